namespace LockN.Audio;

/// <summary>
/// Collects source frames (already mixed to mono) at the source rate and keeps them as 16 kHz samples,
/// resampling on the way in so the source-rate signal is never held whole; where they are kept is the
/// <see cref="DecodedSampleWriter"/>'s choice (memory or a spool file).
/// </summary>
internal sealed class MonoAudioBuilder : IDisposable
{
    private readonly SincResampler? resampler;
    private readonly DecodedSampleWriter writer;

    public MonoAudioBuilder(int sourceSampleRate, long expectedFrames, AudioSpool? spool)
    {
        SourceSampleRate = sourceSampleRate;
        // Exactly what the resampler will emit for that many frames, so an honest header means no regrowth.
        var expectedSamples = ((expectedFrames * DecodedAudio.SampleRate) + sourceSampleRate - 1) / sourceSampleRate;
        writer = new DecodedSampleWriter(spool, expectedSamples);
        if (sourceSampleRate != DecodedAudio.SampleRate)
        {
            resampler = new SincResampler(sourceSampleRate, DecodedAudio.SampleRate, writer.Append);
        }
    }

    public int SourceSampleRate { get; }

    public long SourceFrames { get; private set; }

    public void Add(ReadOnlySpan<float> monoFrames)
    {
        SourceFrames += monoFrames.Length;
        if (resampler is null)
        {
            writer.Append(monoFrames);
        }
        else
        {
            resampler.Write(monoFrames);
        }
    }

    public DecodedSamples Finish()
    {
        resampler?.Flush();
        return writer.Finish();
    }

    public void Dispose() => writer.Dispose();
}
