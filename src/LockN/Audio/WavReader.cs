using System.Buffers;
using System.Buffers.Binary;

namespace LockN.Audio;

/// <summary>
/// Reads RIFF/RF64 WAVE in-process: integer PCM of 8, 16, 24 or 32 bits, 32/64-bit float, any rate and channel
/// count, plain or WAVE_FORMAT_EXTENSIBLE. Sizes in the header are hints, never allocations: a data chunk claiming
/// 4 GB is read for as long as bytes arrive.
/// </summary>
internal static class WavReader
{
    private const ushort FormatPcm = 1;
    private const ushort FormatFloat = 3;
    private const ushort FormatExtensible = 0xFFFE;
    private const uint UnknownSize = uint.MaxValue;
    private const int MaxFormatChunkBytes = 1024;
    private const int MaxChannels = 64;
    private const int MinSampleRate = 1000;
    private const int MaxSampleRate = 768_000;

    /// <summary>The stream holds a codec this reader does not implement (e.g. ADPCM, μ-law): ffmpeg can try it.</summary>
    public const string UnsupportedEncodingPrefix = "Unsupported WAV encoding";

    /// <param name="input">Positioned at the start of the RIFF header.</param>
    /// <param name="maxDurationSeconds">Reading stops with <see cref="AudioDecodeError.TooLong"/> past this.</param>
    /// <param name="streamed">The writer could not seek back to fill in sizes (ffmpeg on a pipe): read the data chunk to the end.</param>
    /// <param name="spool">Where long audio goes instead of memory; null keeps everything in memory.</param>
    public static async Task<AudioDecodeResult> ReadAsync(Stream input, int maxDurationSeconds, bool streamed, AudioSpool? spool, CancellationToken cancellationToken)
    {
        var header = new byte[12];
        if (await input.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken) < header.Length)
        {
            return Malformed("the RIFF header is truncated");
        }

        if (!header.AsSpan(8, 4).SequenceEqual("WAVE"u8))
        {
            return Malformed("the RIFF header does not say WAVE");
        }

        WaveFormat? format = null;
        var chunkHeader = new byte[8];
        while (true)
        {
            if (await input.ReadAtLeastAsync(chunkHeader, 8, throwOnEndOfStream: false, cancellationToken) < 8)
            {
                return Malformed(format is null ? "there is no fmt chunk" : "there is no data chunk");
            }

            var id = chunkHeader.AsSpan(0, 4);
            var size = BinaryPrimitives.ReadUInt32LittleEndian(chunkHeader.AsSpan(4));
            if (id.SequenceEqual("fmt "u8))
            {
                if (size is < 16 or > MaxFormatChunkBytes)
                {
                    return Malformed($"the fmt chunk has an impossible size ({size} bytes)");
                }

                var body = new byte[size + (size & 1)];
                if (await input.ReadAtLeastAsync(body, body.Length, throwOnEndOfStream: false, cancellationToken) < size)
                {
                    return Malformed("the fmt chunk is truncated");
                }

                var (parsed, problem) = WaveFormat.Parse(body.AsSpan(0, (int)size));
                if (parsed is null)
                {
                    return problem!.StartsWith(UnsupportedEncodingPrefix, StringComparison.Ordinal)
                        ? AudioDecodeResult.Failure(AudioDecodeError.UnsupportedMedia, problem)
                        : Malformed(problem);
                }

                format = parsed;
            }
            else if (id.SequenceEqual("data"u8))
            {
                if (format is null)
                {
                    return Malformed("the data chunk comes before the fmt chunk");
                }

                long? declaredBytes = streamed || size == UnknownSize ? null : size;
                return await ReadDataAsync(input, format, declaredBytes, maxDurationSeconds, spool, cancellationToken);
            }
            else if (!await SkipAsync(input, size + (size & 1L), cancellationToken))
            {
                return Malformed(format is null ? "there is no fmt chunk" : "there is no data chunk");
            }
        }
    }

    private static async Task<AudioDecodeResult> ReadDataAsync(Stream input, WaveFormat format, long? declaredBytes, int maxDurationSeconds, AudioSpool? spool, CancellationToken cancellationToken)
    {
        var maxFrames = (long)maxDurationSeconds * format.SampleRate;
        var expectedFrames = Math.Min(declaredBytes ?? 0, RemainingBytes(input) ?? long.MaxValue) / format.BlockAlign;
        MonoAudioBuilder builder;
        try
        {
            builder = new MonoAudioBuilder(format.SampleRate, Math.Min(expectedFrames, maxFrames), spool);
        }
        catch (IOException ex)
        {
            return SpoolFailed(ex);
        }

        using (builder)
        {
            return await ReadDataAsync(input, format, declaredBytes, maxDurationSeconds, builder, cancellationToken);
        }
    }

    // The exception's text names the server's paths: the caller gets the reason in LockN's words only.
    private static AudioDecodeResult SpoolFailed(IOException ex) =>
        AudioDecodeResult.Failure(AudioDecodeError.SpoolUnavailable, ex switch
        {
            SpoolFullException => "LockN is holding as much long audio as it is allowed to (Audio:MaxSpoolMiB); try again when current requests finish.",
            { HResult: 28 or 0x70 } => "LockN has no disk space left for the decoded audio; try again later.",
            _ when ex.Message.Contains("space", StringComparison.OrdinalIgnoreCase) => "LockN has no disk space left for the decoded audio; try again later.",
            _ => "LockN could not write the decoded audio to its spool folder; try again later.",
        });

    private static async Task<AudioDecodeResult> ReadDataAsync(Stream input, WaveFormat format, long? declaredBytes, int maxDurationSeconds, MonoAudioBuilder builder, CancellationToken cancellationToken)
    {
        var maxFrames = (long)maxDurationSeconds * format.SampleRate;
        var framesPerRead = Math.Max(1, 64 * 1024 / format.BlockAlign);
        var buffer = ArrayPool<byte>.Shared.Rent(framesPerRead * format.BlockAlign);
        var mono = ArrayPool<float>.Shared.Rent(framesPerRead);
        try
        {
            var remaining = declaredBytes ?? long.MaxValue;
            var capacity = framesPerRead * format.BlockAlign;
            var carried = 0;
            var ended = false;
            while (!ended && remaining > 0)
            {
                var want = (int)Math.Min(capacity - carried, remaining);
                var read = await input.ReadAtLeastAsync(buffer.AsMemory(carried, want), want, throwOnEndOfStream: false, cancellationToken);
                ended = read < want;
                remaining -= read;
                var bytes = carried + read;
                var frames = bytes / format.BlockAlign;
                if (builder.SourceFrames + frames > maxFrames)
                {
                    return AudioDecodeResult.Failure(AudioDecodeError.TooLong, $"The audio is longer than the limit of {maxDurationSeconds} s.");
                }

                format.MixToMono(buffer.AsSpan(0, frames * format.BlockAlign), mono.AsSpan(0, frames));
                try
                {
                    builder.Add(mono.AsSpan(0, frames));
                }
                catch (IOException ex)
                {
                    return SpoolFailed(ex);
                }

                // A partial frame waits for the next read; at the end of the stream it is dropped.
                carried = bytes - (frames * format.BlockAlign);
                buffer.AsSpan(frames * format.BlockAlign, carried).CopyTo(buffer);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            ArrayPool<float>.Shared.Return(mono);
        }

        if (builder.SourceFrames == 0)
        {
            return AudioDecodeResult.Failure(AudioDecodeError.Empty, "The audio contains no samples.");
        }

        DecodedSamples samples;
        try
        {
            samples = builder.Finish();
        }
        catch (IOException ex)
        {
            return SpoolFailed(ex);
        }

        return AudioDecodeResult.Success(new DecodedAudio
        {
            Samples = samples,
            SourceFrames = builder.SourceFrames,
            SourceSampleRate = format.SampleRate,
            SourceChannels = format.Channels,
            Container = "wav",
        });
    }

    private static long? RemainingBytes(Stream input) => input.CanSeek ? input.Length - input.Position : null;

    /// <summary>Skips a chunk by seeking or reading; false when the stream ends first.</summary>
    private static async Task<bool> SkipAsync(Stream input, long bytes, CancellationToken cancellationToken)
    {
        if (input.CanSeek)
        {
            if (input.Length - input.Position < bytes)
            {
                return false;
            }

            input.Seek(bytes, SeekOrigin.Current);
            return true;
        }

        var scratch = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (bytes > 0)
            {
                var read = await input.ReadAsync(scratch.AsMemory(0, (int)Math.Min(scratch.Length, bytes)), cancellationToken);
                if (read == 0)
                {
                    return false;
                }

                bytes -= read;
            }

            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static AudioDecodeResult Malformed(string problem) =>
        AudioDecodeResult.Failure(AudioDecodeError.Malformed, $"The WAV file is malformed: {problem}.");

    /// <summary>The parts of a fmt chunk that decide how to turn bytes into samples.</summary>
    private sealed record WaveFormat(bool IsFloat, int Channels, int SampleRate, int BitsPerSample, int BlockAlign)
    {
        public static (WaveFormat? Format, string? Problem) Parse(ReadOnlySpan<byte> fmt)
        {
            var tag = BinaryPrimitives.ReadUInt16LittleEndian(fmt);
            int channels = BinaryPrimitives.ReadUInt16LittleEndian(fmt[2..]);
            var sampleRate = BinaryPrimitives.ReadUInt32LittleEndian(fmt[4..]);
            int blockAlign = BinaryPrimitives.ReadUInt16LittleEndian(fmt[12..]);
            int bits = BinaryPrimitives.ReadUInt16LittleEndian(fmt[14..]);
            if (tag == FormatExtensible)
            {
                if (fmt.Length < 40)
                {
                    return (null, "the extensible fmt chunk is truncated");
                }

                // The sub-format GUID begins with the plain format tag.
                tag = BinaryPrimitives.ReadUInt16LittleEndian(fmt[24..]);
            }

            if (tag is not (FormatPcm or FormatFloat))
            {
                return (null, $"{UnsupportedEncodingPrefix} (format tag 0x{tag:X4})");
            }

            if (channels is < 1 or > MaxChannels)
            {
                return (null, $"it declares {channels} channels");
            }

            if (sampleRate is < MinSampleRate or > MaxSampleRate)
            {
                return (null, $"it declares a sample rate of {sampleRate} Hz");
            }

            var isFloat = tag == FormatFloat;
            var valid = isFloat ? bits is 32 or 64 : bits is 8 or 16 or 24 or 32;
            if (!valid)
            {
                return (null, $"{(isFloat ? "float" : "integer")} samples of {bits} bits are not supported");
            }

            if (blockAlign != channels * bits / 8)
            {
                return (null, $"the block size {blockAlign} does not match {channels} channels of {bits} bits");
            }

            return (new WaveFormat(isFloat, channels, (int)sampleRate, bits, blockAlign), null);
        }

        public void MixToMono(ReadOnlySpan<byte> frames, Span<float> mono)
        {
            // The common case (16-bit mono: most speech and ESC-50) without the per-sample format switch.
            if (!IsFloat && BitsPerSample == 16 && Channels == 1)
            {
                var pcm = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(frames);
                for (var i = 0; i < mono.Length; i++)
                {
                    mono[i] = (BitConverter.IsLittleEndian ? pcm[i] : BinaryPrimitives.ReverseEndianness(pcm[i])) / 32768f;
                }

                return;
            }

            var bytesPerSample = BitsPerSample / 8;
            var gain = 1f / Channels;
            for (var frame = 0; frame < mono.Length; frame++)
            {
                var offset = frame * BlockAlign;
                var sum = 0f;
                for (var channel = 0; channel < Channels; channel++, offset += bytesPerSample)
                {
                    sum += ReadSample(frames[offset..]);
                }

                mono[frame] = sum * gain;
            }
        }

        private float ReadSample(ReadOnlySpan<byte> bytes) => (IsFloat, BitsPerSample) switch
        {
            (true, 32) => Finite(BinaryPrimitives.ReadSingleLittleEndian(bytes)),
            (true, _) => Finite((float)BinaryPrimitives.ReadDoubleLittleEndian(bytes)),
            (false, 8) => (bytes[0] - 128) / 128f,
            (false, 16) => BinaryPrimitives.ReadInt16LittleEndian(bytes) / 32768f,
            (false, 24) => (bytes[0] | (bytes[1] << 8) | ((sbyte)bytes[2] << 16)) / 8388608f,
            _ => BinaryPrimitives.ReadInt32LittleEndian(bytes) / 2147483648f,
        };

        // A NaN or infinity in a float file would poison every later model output.
        private static float Finite(float sample) => float.IsFinite(sample) ? sample : 0f;
    }
}
