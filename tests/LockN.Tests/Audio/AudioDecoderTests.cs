using System.Buffers.Binary;
using System.Text;
using LockN.Audio;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LockN.Tests.Audio;

public sealed class AudioDecoderTests : IDisposable
{
    // Ogg streams through ffmpeg's stdin, so a stalled upload leaves ffmpeg running and waiting.
    private static readonly string OggSpeech = Path.Combine(TestAssets.Speech, "formats", "fleurs-en-000.ogg");

    private readonly string scratch = Directory.CreateTempSubdirectory("lockn-audio-").FullName;

    public void Dispose() => Directory.Delete(scratch, recursive: true);

    private static AudioDecoder Decoder(AudioOptions? options = null) =>
        new(Options.Create(options ?? new AudioOptions()), NullLogger<AudioDecoder>.Instance);

    private static async Task<AudioDecodeResult> DecodeBytesAsync(byte[] bytes, AudioOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        return await Decoder(options).DecodeAsync(stream, cancellationToken);
    }

    public static TheoryData<string> SharedAudioFiles()
    {
        var files = new TheoryData<string>();
        foreach (var path in Directory.EnumerateFiles(Path.Combine(TestAssets.Shared, "audio"), "*", SearchOption.AllDirectories)
                     .Where(path => Path.GetExtension(path) is ".wav" or ".mp3" or ".flac" or ".ogg")
                     .Order(StringComparer.Ordinal))
        {
            files.Add(Path.GetRelativePath(TestAssets.Shared, path));
        }

        return files;
    }

    [Fact]
    public void The_shared_audio_has_every_container_the_issue_names() =>
        Assert.Equal([".flac", ".mp3", ".ogg", ".wav"], SharedAudioFiles().Select(row => Path.GetExtension(row.Data)).Distinct().Order());

    [Theory]
    [MemberData(nameof(SharedAudioFiles))]
    public async Task Decoded_duration_matches_ffprobe_within_10ms(string file)
    {
        var path = Path.Combine(TestAssets.Shared, file);
        var expected = await Ffmpeg.DecodedDurationAsync(path);

        var result = await DecodeBytesAsync(await File.ReadAllBytesAsync(path));

        Assert.True(result.Succeeded, result.Message);
        Assert.InRange(result.Audio!.DurationSeconds, expected - 0.010, expected + 0.010);
        Assert.InRange(result.Audio.Samples.Length / 16000.0, expected - 0.010, expected + 0.010);
    }

    [Theory]
    [InlineData("m4a", "-c:a", "aac")] // ffmpeg writes the index after the samples: needs a seekable input
    [InlineData("m4a", "-c:a", "aac", "-movflags", "+faststart")]
    [InlineData("webm", "-c:a", "libopus")]
    [InlineData("aac", "-c:a", "aac")]
    [InlineData("wav", "-c:a", "adpcm_ms")] // a WAV codec the in-process reader leaves to ffmpeg
    public async Task Other_containers_decode_through_ffmpeg_to_their_full_length(string extension, params string[] encoding)
    {
        var path = Path.Combine(scratch, $"speech.{extension}");
        await Ffmpeg.ConvertAsync(TestAssets.JfkWav, path, encoding);
        var expected = await Ffmpeg.DecodedDurationAsync(path);

        var result = await DecodeBytesAsync(await File.ReadAllBytesAsync(path));

        Assert.True(result.Succeeded, result.Message);
        Assert.InRange(result.Audio!.DurationSeconds, expected - 0.010, expected + 0.010);
    }

    [Theory]
    [InlineData(1, 16, false, 16000, 1)]
    [InlineData(1, 8, false, 8000, 1)]
    [InlineData(1, 24, false, 44100, 2)]
    [InlineData(1, 32, false, 48000, 2)]
    [InlineData(3, 32, true, 22050, 1)]
    [InlineData(3, 64, true, 96000, 6)]
    [InlineData(0xFFFE, 24, false, 48000, 2)]
    [InlineData(0xFFFE, 32, true, 44100, 4)]
    public async Task Every_pcm_and_float_wav_decodes_to_the_same_tone(int formatTag, int bits, bool isFloat, int sampleRate, int channels)
    {
        var tone = Spectrum.Tone(1000, sampleRate, 1.5, amplitude: 0.5);
        var wav = WavFile(formatTag, bits, isFloat, sampleRate, channels, tone);

        var result = await DecodeBytesAsync(wav);

        Assert.True(result.Succeeded, result.Message);
        var audio = result.Audio!;
        Assert.Equal((sampleRate, channels), (audio.SourceSampleRate, audio.SourceChannels));
        Assert.Equal(1.5, audio.DurationSeconds, 3);
        Assert.Equal(24000, audio.Samples.Length);
        var samples = audio.Samples.ToArray();
        var spectrum = Spectrum.MagnitudeDb(samples.AsSpan(2000), 16384);
        Assert.InRange(Spectrum.PeakBin(spectrum) * 16000.0 / 16384, 999.0, 1001.0);
        Assert.InRange(samples.AsSpan(4000, 16000).ToArray().Max(Math.Abs), 0.49f, 0.51f);
    }

    [Fact]
    public async Task A_wav_claiming_4GB_of_data_decodes_what_is_there()
    {
        var wav = TestAudio.NoiseWav(2);
        BinaryPrimitives.WriteUInt32LittleEndian(wav.AsSpan(4), uint.MaxValue - 8);
        BinaryPrimitives.WriteUInt32LittleEndian(wav.AsSpan(40), uint.MaxValue - 44);
        var before = GC.GetAllocatedBytesForCurrentThread();

        var result = await DecodeBytesAsync(wav);

        Assert.True(result.Succeeded, result.Message);
        Assert.Equal(2.0, result.Audio!.DurationSeconds, 3);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 * 1024 * 1024, "decoding 2 s allocated more than 16 MB");
    }

    public static TheoryData<string, byte[], AudioDecodeError> BadInputs()
    {
        var wav = TestAudio.NoiseWav(1);
        byte[] With(Action<byte[]> change)
        {
            var copy = (byte[])wav.Clone();
            change(copy);
            return copy;
        }

        return new TheoryData<string, byte[], AudioDecodeError>
        {
            { "empty file", [], AudioDecodeError.Empty },
            { "text", Encoding.UTF8.GetBytes("this is a text file, not audio\n"), AudioDecodeError.UnsupportedMedia },
            { "truncated RIFF header", wav[..10], AudioDecodeError.UnsupportedMedia },
            { "truncated fmt chunk", wav[..30], AudioDecodeError.Malformed },
            { "no data chunk", wav[..36], AudioDecodeError.Malformed },
            { "empty data chunk", With(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(40), 0))[..44], AudioDecodeError.Empty },
            { "zero channels", With(b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(22), 0)), AudioDecodeError.Malformed },
            { "zero sample rate", With(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(24), 0)), AudioDecodeError.Malformed },
            { "4 GHz sample rate", With(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(24), uint.MaxValue)), AudioDecodeError.Malformed },
            { "12-bit samples", With(b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(34), 12)), AudioDecodeError.Malformed },
            { "block size that lies", With(b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(32), 7)), AudioDecodeError.Malformed },
            { "fmt chunk claiming 4 GB", With(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), uint.MaxValue)), AudioDecodeError.Malformed },
            { "unknown chunk claiming 4 GB", With(b => "junk"u8.CopyTo(b.AsSpan(36))), AudioDecodeError.Malformed },
            { "mp3 frame sync then garbage", [0xFF, 0xFB, 0x90, 0x00, .. new byte[4000]], AudioDecodeError.Malformed },
            { "ogg page header then nothing", Encoding.ASCII.GetBytes("OggS\0\u0002"), AudioDecodeError.Malformed },
        };
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Bad_input_is_an_error_result_with_a_message(string what, byte[] bytes, AudioDecodeError expected)
    {
        var result = await DecodeBytesAsync(bytes);

        Assert.False(result.Succeeded, what);
        Assert.Equal(expected, result.Error);
        Assert.False(string.IsNullOrWhiteSpace(result.Message));
        Assert.Equal(0, Ffmpeg.RunningChildren());
    }

    [Fact]
    public async Task Audio_over_the_duration_limit_is_too_long_in_both_decoders()
    {
        var options = new AudioOptions { MaxDurationSeconds = 5 };

        var wav = await DecodeBytesAsync(TestAudio.NoiseWav(6), options);
        var mp3 = await DecodeBytesAsync(await File.ReadAllBytesAsync(TestAssets.JfkMp3), options);

        Assert.Equal(AudioDecodeError.TooLong, wav.Error);
        Assert.Equal(AudioDecodeError.TooLong, mp3.Error);
        Assert.Contains("5 s", mp3.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_ffmpeg_wav_still_decodes_and_other_containers_say_what_is_missing()
    {
        var options = new AudioOptions { FfmpegPath = Path.Combine(scratch, "no-ffmpeg-here") };

        var wav = await DecodeBytesAsync(TestAudio.NoiseWav(1), options);
        var mp3 = await DecodeBytesAsync(await File.ReadAllBytesAsync(TestAssets.JfkMp3), options);

        Assert.True(wav.Succeeded, wav.Message);
        Assert.Equal(AudioDecodeError.DecoderUnavailable, mp3.Error);
        Assert.Contains("Audio:FfmpegPath", mp3.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancelling_a_decode_kills_ffmpeg()
    {
        await using var input = new StallingStream(await File.ReadAllBytesAsync(OggSpeech), stallAfter: 4096);
        using var cancel = new CancellationTokenSource();
        var decoding = Decoder().DecodeAsync(input, cancel.Token);
        await input.Stalled.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, Ffmpeg.RunningChildren());

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => decoding.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, Ffmpeg.RunningChildren());
    }

    [Fact]
    public async Task A_decode_that_runs_past_its_time_limit_is_stopped_with_an_error()
    {
        await using var input = new StallingStream(await File.ReadAllBytesAsync(OggSpeech), stallAfter: 4096);

        var result = await Decoder(new AudioOptions { DecodeTimeoutSeconds = 1 }).DecodeAsync(input, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(AudioDecodeError.TimedOut, result.Error);
        Assert.Contains("Audio:DecodeTimeoutSeconds", result.Message, StringComparison.Ordinal);
        Assert.Equal(0, Ffmpeg.RunningChildren());
    }

    /// <summary>A WAV file of one tone in every channel, in the given sample encoding.</summary>
    private static byte[] WavFile(int formatTag, int bits, bool isFloat, int sampleRate, int channels, float[] tone)
    {
        var bytesPerSample = bits / 8;
        var fmtSize = formatTag == 0xFFFE ? 40 : 16;
        var dataSize = tone.Length * channels * bytesPerSample;
        var wav = new byte[12 + 8 + fmtSize + 8 + dataSize];
        var span = wav.AsSpan();
        "RIFF"u8.CopyTo(span);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], wav.Length - 8);
        "WAVEfmt "u8.CopyTo(span[8..]);
        BinaryPrimitives.WriteInt32LittleEndian(span[16..], fmtSize);
        BinaryPrimitives.WriteUInt16LittleEndian(span[20..], (ushort)formatTag);
        BinaryPrimitives.WriteUInt16LittleEndian(span[22..], (ushort)channels);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], sampleRate);
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], sampleRate * channels * bytesPerSample);
        BinaryPrimitives.WriteUInt16LittleEndian(span[32..], (ushort)(channels * bytesPerSample));
        BinaryPrimitives.WriteUInt16LittleEndian(span[34..], (ushort)bits);
        if (formatTag == 0xFFFE)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span[36..], 22);
            BinaryPrimitives.WriteUInt16LittleEndian(span[38..], (ushort)bits);
            BinaryPrimitives.WriteUInt16LittleEndian(span[44..], (ushort)(isFloat ? 3 : 1));
            new byte[] { 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71 }.CopyTo(span[46..]);
        }

        var data = span[(20 + fmtSize)..];
        "data"u8.CopyTo(data);
        BinaryPrimitives.WriteInt32LittleEndian(data[4..], dataSize);
        var offset = 8;
        foreach (var sample in tone)
        {
            for (var channel = 0; channel < channels; channel++, offset += bytesPerSample)
            {
                var target = data[offset..];
                switch (isFloat, bits)
                {
                    case (true, 32): BinaryPrimitives.WriteSingleLittleEndian(target, sample); break;
                    case (true, _): BinaryPrimitives.WriteDoubleLittleEndian(target, sample); break;
                    case (false, 8): target[0] = (byte)Math.Round((sample * 127) + 128); break;
                    case (false, 16): BinaryPrimitives.WriteInt16LittleEndian(target, (short)Math.Round(sample * 32767)); break;
                    case (false, 24):
                        var value = (int)Math.Round(sample * 8388607);
                        target[0] = (byte)value;
                        target[1] = (byte)(value >> 8);
                        target[2] = (byte)(value >> 16);
                        break;
                    default: BinaryPrimitives.WriteInt32LittleEndian(target, (int)Math.Round(sample * 2147483647.0)); break;
                }
            }
        }

        return wav;
    }

    /// <summary>A seekable stream that serves some bytes and then blocks until its reader is cancelled, like a stalled upload.</summary>
    private sealed class StallingStream(byte[] content, int stallAfter) : Stream
    {
        private readonly TaskCompletionSource stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Stalled => stalled.Task;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => content.Length;
        public override long Position { get; set; }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Position >= stallAfter)
            {
                stalled.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            var count = (int)Math.Min(buffer.Length, stallAfter - Position);
            content.AsMemory((int)Position, count).CopyTo(buffer);
            Position += count;
            return count;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");

        public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => Position + offset,
            _ => Length + offset,
        };

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
