namespace LockN.Streaming;

/// <summary>
/// The most recent audio of a stream (16 kHz mono) in a fixed ring, addressed by absolute sample position since
/// the stream began. Appending never allocates; the oldest samples are overwritten once the ring is full, so the
/// utterance in progress must be shorter than <see cref="Capacity"/> (streams force-finalise long utterances).
/// </summary>
internal sealed class AudioChunkBuffer
{
    private readonly float[] ring;

    public AudioChunkBuffer(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ring = new float[capacity];
    }

    public int Capacity => ring.Length;

    /// <summary>Position one past the newest sample: the number of samples ever appended.</summary>
    public long End { get; private set; }

    /// <summary>Position of the oldest sample still held.</summary>
    public long Start => Math.Max(0, End - ring.Length);

    public void Append(ReadOnlySpan<float> samples)
    {
        if (samples.Length >= ring.Length)
        {
            // Only the newest Capacity samples can be kept.
            End += samples.Length - ring.Length;
            samples = samples[^ring.Length..];
        }

        var offset = (int)(End % ring.Length);
        var first = Math.Min(samples.Length, ring.Length - offset);
        samples[..first].CopyTo(ring.AsSpan(offset));
        samples[first..].CopyTo(ring);
        End += samples.Length;
    }

    /// <summary>Copies the samples in [<paramref name="from"/>, <paramref name="to"/>) into a new array.</summary>
    public float[] Copy(long from, long to)
    {
        if (from < Start || to > End || from > to)
        {
            throw new ArgumentOutOfRangeException(nameof(from), $"[{from}, {to}) is outside the held range [{Start}, {End}).");
        }

        var result = new float[to - from];
        var offset = (int)(from % ring.Length);
        var first = Math.Min(result.Length, ring.Length - offset);
        ring.AsSpan(offset, first).CopyTo(result);
        ring.AsSpan(0, result.Length - first).CopyTo(result.AsSpan(first));
        return result;
    }
}
