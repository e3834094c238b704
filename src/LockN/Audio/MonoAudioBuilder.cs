namespace LockN.Audio;

/// <summary>
/// Collects source frames (already mixed to mono) at the source rate and keeps them as 16 kHz samples,
/// resampling on the way in so the source-rate signal is never held whole.
/// </summary>
internal sealed class MonoAudioBuilder
{
    private readonly SincResampler? resampler;
    private float[] samples;
    private int count;

    public MonoAudioBuilder(int sourceSampleRate, long expectedFrames)
    {
        SourceSampleRate = sourceSampleRate;
        // Exactly what the resampler will emit for that many frames, so an honest header means no copy in Finish. A
        // header may lie about its length, so the first allocation is capped; the buffer grows with what really arrives.
        var expectedSamples = ((expectedFrames * DecodedAudio.SampleRate) + sourceSampleRate - 1) / sourceSampleRate;
        samples = new float[(int)Math.Clamp(expectedSamples, 16, 1024 * 1024)];
        if (sourceSampleRate != DecodedAudio.SampleRate)
        {
            resampler = new SincResampler(sourceSampleRate, DecodedAudio.SampleRate, Append);
        }
    }

    public int SourceSampleRate { get; }

    public long SourceFrames { get; private set; }

    public void Add(ReadOnlySpan<float> monoFrames)
    {
        SourceFrames += monoFrames.Length;
        if (resampler is null)
        {
            Append(monoFrames);
        }
        else
        {
            resampler.Write(monoFrames);
        }
    }

    public float[] Finish()
    {
        resampler?.Flush();
        return count == samples.Length ? samples : samples.AsSpan(0, count).ToArray();
    }

    private void Append(ReadOnlySpan<float> resampled)
    {
        if (count + resampled.Length > samples.Length)
        {
            Array.Resize(ref samples, Math.Max(samples.Length * 2, count + resampled.Length));
        }

        resampled.CopyTo(samples.AsSpan(count));
        count += resampled.Length;
    }
}
