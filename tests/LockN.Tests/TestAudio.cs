using System.Buffers.Binary;

namespace LockN.Tests;

/// <summary>Builds WAV files in memory for tests that need audio of a given length or shape.</summary>
public static class TestAudio
{
    /// <summary>16-bit PCM mono WAV of low-level noise (deterministic), the cheapest long input.</summary>
    public static byte[] NoiseWav(double seconds, int sampleRate = 16000)
    {
        var random = new Random(42);
        return Pcm16Wav(sampleRate, (int)(seconds * sampleRate), _ => (short)random.Next(-800, 800));
    }

    public static byte[] Pcm16Wav(int sampleRate, int frames, Func<int, short> sample)
    {
        var bytes = new byte[44 + (frames * 2)];
        var span = bytes.AsSpan();
        "RIFF"u8.CopyTo(span);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], 36 + (frames * 2));
        "WAVEfmt "u8.CopyTo(span[8..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[16..], 16);
        BinaryPrimitives.WriteInt16LittleEndian(span[20..], 1);
        BinaryPrimitives.WriteInt16LittleEndian(span[22..], 1);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], sampleRate);
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], sampleRate * 2);
        BinaryPrimitives.WriteInt16LittleEndian(span[32..], 2);
        BinaryPrimitives.WriteInt16LittleEndian(span[34..], 16);
        "data"u8.CopyTo(span[36..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[40..], frames * 2);
        for (var i = 0; i < frames; i++)
        {
            BinaryPrimitives.WriteInt16LittleEndian(span[(44 + (i * 2))..], sample(i));
        }

        return bytes;
    }

    /// <summary>32-bit float mono WAV of the given samples.</summary>
    public static byte[] FloatWav(float[] samples, int sampleRate = 16000)
    {
        var bytes = new byte[44 + (samples.Length * 4)];
        var span = bytes.AsSpan();
        "RIFF"u8.CopyTo(span);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], 36 + (samples.Length * 4));
        "WAVEfmt "u8.CopyTo(span[8..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[16..], 16);
        BinaryPrimitives.WriteInt16LittleEndian(span[20..], 3);
        BinaryPrimitives.WriteInt16LittleEndian(span[22..], 1);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], sampleRate);
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], sampleRate * 4);
        BinaryPrimitives.WriteInt16LittleEndian(span[32..], 4);
        BinaryPrimitives.WriteInt16LittleEndian(span[34..], 32);
        "data"u8.CopyTo(span[36..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[40..], samples.Length * 4);
        for (var i = 0; i < samples.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(span[(44 + (i * 4))..], samples[i]);
        }

        return bytes;
    }

    public static MultipartFormDataContent Form(byte[] file, string fileName, params (string Name, string Value)[] fields)
    {
        var content = new MultipartFormDataContent { { new ByteArrayContent(file), "file", fileName } };
        foreach (var (name, value) in fields)
        {
            content.Add(new StringContent(value), name);
        }

        return content;
    }
}
