using System.Buffers.Binary;
using System.Net.Http.Headers;

namespace LockN.Tests.Audio;

/// <summary>How a malformed case is sent: a normal form, or a request that is wrong around the file.</summary>
public enum UploadShape
{
    Form,
    EmptyFilePart,
    NoFilePart,
    NotMultipart,
    NoBoundary,
}

/// <summary>
/// One malformed upload. <see cref="MayDecode"/> marks a case that is still real audio underneath (a cut or mutated
/// recording, an odd but valid WAV), so a 200 is a fair answer to it; for any other case a 200 must be confirmed by
/// the reference ffmpeg.
/// </summary>
public sealed record MalformedUpload(int Index, string Kind, byte[] File, string FileName, string? PartContentType, UploadShape Shape, bool MayDecode)
{
    public override string ToString() => $"#{Index} {Kind} ({File.Length} bytes, {FileName}, {Shape})";

    /// <summary>The request body; <paramref name="fields"/> are the endpoint's own (e.g. the model of a transcription).</summary>
    public HttpContent ToContent(params (string Name, string Value)[] fields)
    {
        if (Shape == UploadShape.NotMultipart)
        {
            return new ByteArrayContent(File) { Headers = { ContentType = new MediaTypeHeaderValue(PartContentType ?? "application/octet-stream") } };
        }

        var form = new MultipartFormDataContent("malformed-" + Index);
        if (Shape != UploadShape.NoFilePart)
        {
            var part = new ByteArrayContent(Shape == UploadShape.EmptyFilePart ? [] : File);
            if (PartContentType is not null)
            {
                part.Headers.ContentType = MediaTypeHeaderValue.Parse(PartContentType);
            }

            form.Add(part, "file", FileName);
        }

        foreach (var (name, value) in fields)
        {
            form.Add(new StringContent(value), name);
        }

        if (Shape == UploadShape.NoBoundary)
        {
            form.Headers.ContentType = new MediaTypeHeaderValue("multipart/form-data");
        }

        return form;
    }
}

/// <summary>
/// A deterministic corpus of malformed audio uploads for the reliability harness (the tests and the bench): random
/// bytes, WAV headers with wrong fields, cut and mutated recordings in every container LockN takes, empty files and
/// parts, wrong content types. The same seed gives the same corpus.
/// </summary>
public static class MalformedAudio
{
    /// <summary>The containers the recordings are encoded in once (by the real ffmpeg), with their file extension.</summary>
    private static readonly (string Extension, string[] Options)[] Encodings =
    [
        ("mp3", ["-c:a", "libmp3lame", "-b:a", "32k"]),
        ("flac", ["-c:a", "flac"]),
        ("ogg", ["-c:a", "libvorbis", "-q:a", "0"]),
        ("opus", ["-c:a", "libopus", "-b:a", "16k", "-f", "ogg"]),
        ("m4a", ["-c:a", "aac", "-b:a", "32k"]),
        ("webm", ["-c:a", "libopus", "-b:a", "16k"]),
    ];

    private static readonly string[] ContentTypes = ["audio/wav", "audio/mpeg", "text/plain", "application/json", "application/octet-stream", "image/png", "video/mp4"];

    /// <summary>
    /// Encodes the first <paramref name="seconds"/> of <paramref name="sourceWav"/> as 16 kHz mono in every container,
    /// into <paramref name="directory"/>; returns extension → bytes (the WAV too).
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, byte[]>> EncodeRecordingsAsync(string sourceWav, string directory, double seconds = 3)
    {
        Directory.CreateDirectory(directory);
        var recordings = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var length = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (extension, options) in Encodings.Prepend(("wav", ["-c:a", "pcm_s16le"])))
        {
            var path = Path.Combine(directory, "recording." + extension);
            await Ffmpeg.ConvertAsync(sourceWav, path, ["-t", length, "-ar", "16000", "-ac", "1", .. options]);
            recordings[extension] = await File.ReadAllBytesAsync(path);
        }

        return recordings;
    }

    /// <summary><paramref name="count"/> cases from <paramref name="recordings"/> (see <see cref="EncodeRecordingsAsync"/>), the same for the same seed.</summary>
    public static IEnumerable<MalformedUpload> Generate(IReadOnlyDictionary<string, byte[]> recordings, int count, int seed = 14)
    {
        var random = new Random(seed);
        var containers = recordings.Keys.Where(k => k != "wav").Order(StringComparer.Ordinal).ToArray();
        for (var index = 0; index < count; index++)
        {
            // A fixed rotation over the families, so any prefix of the corpus has some of each.
            yield return (index % 10) switch
            {
                0 => RandomBytes(random, index),
                1 or 2 => MutatedWav(random, index),
                3 or 4 => Truncated(random, index, containers[random.Next(containers.Length)], recordings),
                5 or 6 => ByteMutated(random, index, containers[random.Next(containers.Length)], recordings),
                7 => HeaderMutated(random, index, containers[random.Next(containers.Length)], recordings),
                8 => Mislabelled(random, index, recordings),
                _ => WrongRequest(random, index, recordings),
            };
        }
    }

    private static MalformedUpload RandomBytes(Random random, int index)
    {
        var bytes = new byte[Math.Min(64 * 1024, (int)Math.Pow(2, random.NextDouble() * 16))]; // 1 byte to 64 KiB, evenly over the octaves
        random.NextBytes(bytes);
        return new(index, "random-bytes", bytes, Pick(random, ["a.wav", "a.mp3", "a.bin", "noext", "a.flac"]), Pick(random, ContentTypes), UploadShape.Form, MayDecode: false);
    }

    /// <summary>A small valid WAV (or one field of it made wrong), built here so each header field can be set.</summary>
    private static MalformedUpload MutatedWav(Random random, int index)
    {
        var (channels, rate, bits, format) = ((short)1, 16000, (short)16, (short)1);
        var dataBytes = random.Next(0, 8) * 1000 + random.Next(0, 2);
        var riffSizeDelta = 0L;
        long? dataSizeOverride = null;
        var withFmt = true;
        var withData = true;
        var fmtSize = 16;
        var kind = "wav-" + random.Next(16) switch
        {
            0 => Set(() => channels = 0, "zero-channels"),
            1 => Set(() => channels = (short)Pick(random, [3, 65, 4096, -1]), "many-channels"),
            2 => Set(() => rate = Pick(random, [0, 1, 7, 1_000_000, int.MaxValue, -1]), "odd-sample-rate"),
            3 => Set(() => bits = (short)Pick(random, [0, 7, 64, 1, 12, -16]), "odd-bits"),
            4 => Set(() => (bits, format) = ((short)64, (short)3), "float64"),
            5 => Set(() => format = (short)Pick(random, [0, 2, 0x55, 0x11, 0xFFFE, 0x7FFF]), "odd-format-tag"),
            6 => Set(() => dataSizeOverride = dataBytes + random.Next(1, 1_000_000), "truncated-data"),
            7 => Set(() => dataSizeOverride = Pick(random, [0xFFFFFFFFL, 0x7FFFFFFFL, 0]), "odd-data-size"),
            8 => Set(() => withFmt = false, "no-fmt"),
            9 => Set(() => withData = false, "no-data"),
            10 => Set(() => riffSizeDelta = Pick(random, [-1_000_000L, -8, 1, 1_000_000]), "wrong-riff-size"),
            11 => Set(() => fmtSize = Pick(random, [0, 2, 14, 40, 1_000_000]), "wrong-fmt-size"),
            12 => Set(() => (bits, format) = ((short)8, (short)1), "pcm8"),
            13 => Set(() => (bits, format) = ((short)24, (short)1), "pcm24"),
            14 => Set(() => (bits, format) = ((short)32, (short)3), "float32"),
            _ => Set(() => channels = 2, "stereo"),
        };

        if (kind is "wav-pcm8" or "wav-pcm24" or "wav-float32" or "wav-stereo" or "wav-many-channels" or "wav-wrong-riff-size" or "wav-truncated-data" or "wav-odd-data-size")
        {
            // Over a second however it is read: past the harness's duration limit, so a WAV that still reads is refused cheaply.
            dataBytes = 140_000 + random.Next(0, 2);
        }

        var bytes = new MemoryStream();
        var header = new byte[8];
        void Chunk(string id, long size)
        {
            System.Text.Encoding.ASCII.GetBytes(id, header);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), (uint)size);
            bytes.Write(header);
        }

        Chunk("RIFF", 0);
        bytes.Write("WAVE"u8);
        if (withFmt)
        {
            Chunk("fmt ", fmtSize);
            var fmt = new byte[Math.Max(16, Math.Min(fmtSize, 64))];
            BinaryPrimitives.WriteInt16LittleEndian(fmt, format);
            BinaryPrimitives.WriteInt16LittleEndian(fmt.AsSpan(2), channels);
            BinaryPrimitives.WriteInt32LittleEndian(fmt.AsSpan(4), rate);
            BinaryPrimitives.WriteInt32LittleEndian(fmt.AsSpan(8), rate * channels * bits / 8);
            BinaryPrimitives.WriteInt16LittleEndian(fmt.AsSpan(12), (short)(channels * bits / 8));
            BinaryPrimitives.WriteInt16LittleEndian(fmt.AsSpan(14), bits);
            bytes.Write(fmt);
        }

        if (withData)
        {
            Chunk("data", dataSizeOverride ?? dataBytes);
            var samples = new byte[dataBytes];
            random.NextBytes(samples);
            bytes.Write(samples);
        }

        var file = bytes.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(4), (uint)Math.Max(0, file.Length - 8 + riffSizeDelta));
        var mayDecode = kind is "wav-pcm8" or "wav-pcm24" or "wav-float32" or "wav-stereo" or "wav-many-channels" or "wav-wrong-riff-size" or "wav-truncated-data" or "wav-odd-data-size";
        return new(index, kind, file, "a.wav", "audio/wav", UploadShape.Form, mayDecode);

        static string Set(Action change, string name)
        {
            change();
            return name;
        }
    }

    private static MalformedUpload Truncated(Random random, int index, string container, IReadOnlyDictionary<string, byte[]> recordings)
    {
        var source = recordings[container];
        // Cut in the headers, or in the last half (past the harness's one-second limit, so what decodes is refused cheaply).
        var length = random.Next(2) == 0 ? random.Next(Math.Min(source.Length, 128)) : (source.Length / 2) + random.Next(source.Length / 2);
        return new(index, $"{container}-truncated", source[..length], "a." + container, ContentTypeOf(container), UploadShape.Form, MayDecode: true);
    }

    private static MalformedUpload ByteMutated(Random random, int index, string container, IReadOnlyDictionary<string, byte[]> recordings)
    {
        var file = (byte[])recordings[container].Clone();
        var flips = 1 << random.Next(10); // 1 to 512 bytes changed
        for (var i = 0; i < flips; i++)
        {
            file[random.Next(file.Length)] = (byte)random.Next(256);
        }

        return new(index, $"{container}-mutated", file, "a." + container, ContentTypeOf(container), UploadShape.Form, MayDecode: true);
    }

    /// <summary>The container's first bytes kept (so it is sniffed as that container) and the next ones scrambled.</summary>
    private static MalformedUpload HeaderMutated(Random random, int index, string container, IReadOnlyDictionary<string, byte[]> recordings)
    {
        var file = (byte[])recordings[container].Clone();
        for (var i = 4 + random.Next(8); i < Math.Min(file.Length, 256); i += 1 + random.Next(8))
        {
            file[i] = (byte)random.Next(256);
        }

        return new(index, $"{container}-header-mutated", file, "a." + container, ContentTypeOf(container), UploadShape.Form, MayDecode: true);
    }

    /// <summary>One container's bytes under another's name and type, or one container's header on another's body.</summary>
    private static MalformedUpload Mislabelled(Random random, int index, IReadOnlyDictionary<string, byte[]> recordings)
    {
        var names = recordings.Keys.Order(StringComparer.Ordinal).ToArray();
        var (a, b) = (Pick(random, names), Pick(random, names));
        if (random.Next(2) == 0)
        {
            var recording = recordings[a];
            return new(index, $"{a}-named-{b}", recording, "a." + b, Pick(random, ContentTypes), UploadShape.Form, MayDecode: true);
        }

        var split = 16 + random.Next(64);
        var spliced = recordings[a][..Math.Min(split, recordings[a].Length)].Concat(recordings[b].Skip(split)).ToArray();
        return new(index, $"{a}-header-on-{b}", spliced, "a." + a, ContentTypeOf(a), UploadShape.Form, MayDecode: true);
    }

    private static MalformedUpload WrongRequest(Random random, int index, IReadOnlyDictionary<string, byte[]> recordings)
    {
        var file = recordings["wav"][..4096];
        return random.Next(6) switch
        {
            0 => new(index, "empty-file", [], "a.wav", "audio/wav", UploadShape.Form, MayDecode: false),
            1 => new(index, "zero-length-part", file, "a.wav", "audio/wav", UploadShape.EmptyFilePart, MayDecode: false),
            2 => new(index, "no-file-part", file, "a.wav", "audio/wav", UploadShape.NoFilePart, MayDecode: false),
            3 => new(index, "not-multipart", file, "a.wav", Pick(random, ContentTypes), UploadShape.NotMultipart, MayDecode: false),
            4 => new(index, "no-boundary", file, "a.wav", "audio/wav", UploadShape.NoBoundary, MayDecode: false),
            _ => new(index, "tiny-file", file[..random.Next(1, 45)], "a.wav", "audio/wav", UploadShape.Form, MayDecode: false),
        };
    }

    private static string ContentTypeOf(string container) => container switch
    {
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "webm" => "audio/webm",
        "opus" => "audio/ogg",
        _ => "audio/" + container,
    };

    private static T Pick<T>(Random random, T[] choices) => choices[random.Next(choices.Length)];
}
