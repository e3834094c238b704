using System.Buffers.Binary;
using LockN.Audio;

namespace LockN.Tests.Streaming;

/// <summary>Raw PCM for streaming tests, read straight from WAV files and converted without the server's help.</summary>
public static class StreamAudio
{
    /// <summary>The samples of a 16-bit PCM WAV file, channels averaged, at the file's own rate.</summary>
    public static (float[] Samples, int SampleRate) ReadWav(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var channels = BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(22));
        var rate = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(24));
        var offset = 12;
        while (offset + 8 <= bytes.Length)
        {
            var id = System.Text.Encoding.ASCII.GetString(bytes, offset, 4);
            var size = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset + 4));
            if (id == "data")
            {
                var frames = Math.Min(size, bytes.Length - offset - 8) / (2 * channels);
                var samples = new float[frames];
                for (var i = 0; i < frames; i++)
                {
                    float sum = 0;
                    for (var c = 0; c < channels; c++)
                    {
                        sum += BinaryPrimitives.ReadInt16LittleEndian(bytes.AsSpan(offset + 8 + (((i * channels) + c) * 2))) / 32768f;
                    }

                    samples[i] = sum / channels;
                }

                return (samples, rate);
            }

            offset += 8 + size + (size & 1);
        }

        throw new InvalidDataException($"{path} has no data chunk");
    }

    public static float[] Pad(float[] samples, int sampleRate, double secondsBefore, double secondsAfter)
    {
        var before = (int)(secondsBefore * sampleRate);
        var padded = new float[before + samples.Length + (int)(secondsAfter * sampleRate)];
        samples.CopyTo(padded, before);
        return padded;
    }

    public static float[] Resample(float[] samples, int from, int to)
    {
        var output = new List<float>();
        var resampler = new SincResampler(from, to, chunk => output.AddRange(chunk.ToArray()));
        resampler.Write(samples);
        resampler.Flush();
        return [.. output];
    }

    public static byte[] Pcm16(float[] samples)
    {
        var bytes = new byte[samples.Length * 2];
        for (var i = 0; i < samples.Length; i++)
        {
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(i * 2), (short)Math.Clamp(samples[i] * 32768f, short.MinValue, short.MaxValue));
        }

        return bytes;
    }

    public static byte[] PcmF32(float[] samples)
    {
        var bytes = new byte[samples.Length * 4];
        for (var i = 0; i < samples.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), samples[i]);
        }

        return bytes;
    }

    /// <summary>
    /// The speech span by energy, independent of the VAD under test: the first and last 20 ms frame within 20 dB of
    /// the loudest frame (the recording's noise floor sits ~32 dB below its peak).
    /// </summary>
    public static (double Start, double End) SpeechSpan(float[] samples, int sampleRate)
    {
        var frame = sampleRate / 50;
        var levels = Enumerable.Range(0, samples.Length / frame)
            .Select(f => Math.Sqrt(samples.AsSpan(f * frame, frame).ToArray().Average(s => (double)s * s)))
            .ToArray();
        var threshold = levels.Max() * Math.Pow(10, -20 / 20.0);
        var first = Array.FindIndex(levels, l => l >= threshold);
        var last = Array.FindLastIndex(levels, l => l >= threshold);
        return (first * 0.02, (last + 1) * 0.02);
    }
}
