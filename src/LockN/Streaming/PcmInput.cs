using System.Buffers.Binary;
using LockN.Audio;

namespace LockN.Streaming;

/// <summary>
/// Turns a client's raw PCM, in messages of any size (a message may end inside a sample), into 16 kHz mono
/// floats: channels averaged, then the same band-limited resampler as file uploads.
/// </summary>
internal sealed class PcmInput
{
    public const int TargetRate = 16_000;

    private readonly InputAudioFormat format;
    private readonly Action<ReadOnlySpan<float>> output;
    private readonly SincResampler? resampler;
    private readonly byte[] partialFrame;
    private int partialBytes;
    private float[] mono = new float[4096];

    public PcmInput(InputAudioFormat format, Action<ReadOnlySpan<float>> output)
    {
        this.format = format;
        this.output = output;
        partialFrame = new byte[format.BytesPerFrame];
        resampler = format.SampleRate == TargetRate ? null : new SincResampler(format.SampleRate, TargetRate, output);
    }

    /// <summary>Frames received so far, at the client's rate.</summary>
    public long FramesReceived { get; private set; }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        var frameBytes = format.BytesPerFrame;
        if (partialBytes > 0)
        {
            var take = Math.Min(frameBytes - partialBytes, bytes.Length);
            bytes[..take].CopyTo(partialFrame.AsSpan(partialBytes));
            partialBytes += take;
            bytes = bytes[take..];
            if (partialBytes < frameBytes)
            {
                return;
            }

            Convert(partialFrame);
            partialBytes = 0;
        }

        var whole = bytes.Length / frameBytes * frameBytes;
        if (whole > 0)
        {
            Convert(bytes[..whole]);
        }

        bytes[whole..].CopyTo(partialFrame);
        partialBytes = bytes.Length - whole;
    }

    /// <summary>Emits what the resampler still holds, so the output lasts as long as the input.</summary>
    public void Flush() => resampler?.Flush();

    private void Convert(ReadOnlySpan<byte> frames)
    {
        var frameBytes = format.BytesPerFrame;
        var count = frames.Length / frameBytes;
        if (mono.Length < count)
        {
            mono = new float[Math.Max(count, mono.Length * 2)];
        }

        var channels = format.Channels;
        var f32 = format.Pcm == PcmEncoding.F32Le;
        var sampleBytes = f32 ? 4 : 2;
        for (var i = 0; i < count; i++)
        {
            var frame = frames.Slice(i * frameBytes, frameBytes);
            float sum = 0;
            for (var c = 0; c < channels; c++)
            {
                var sample = frame.Slice(c * sampleBytes, sampleBytes);
                sum += f32 ? BinaryPrimitives.ReadSingleLittleEndian(sample) : BinaryPrimitives.ReadInt16LittleEndian(sample) / 32768f;
            }

            // A float stream may carry NaN or infinities; they would poison the resampler and the models.
            mono[i] = float.IsFinite(sum) ? Math.Clamp(channels == 1 ? sum : sum / channels, -1f, 1f) : 0f;
        }

        FramesReceived += count;
        var converted = mono.AsSpan(0, count);
        if (resampler is null)
        {
            output(converted);
        }
        else
        {
            resampler.Write(converted);
        }
    }
}
