namespace LockN.Models;

/// <summary>A Whisper model that <c>lockn models pull</c> can download, with the SHA-1 whisper.cpp publishes for it.</summary>
/// <param name="Name">The short name users type, e.g. <c>base.en</c>.</param>
/// <param name="FileName">The file name at the download location and on disk, e.g. <c>ggml-base.en.bin</c>.</param>
/// <param name="Sha1">Lower-case hex SHA-1 of the file.</param>
/// <param name="SizeHint">Approximate size for listings, e.g. <c>142 MiB</c>.</param>
internal sealed record KnownWhisperModel(string Name, string FileName, string Sha1, string SizeHint)
{
    /// <summary>The id clients send, e.g. <c>whisper-base.en</c>.</summary>
    public string ModelId => KnownWhisperModels.IdPrefix + Name;
}

/// <summary>
/// The downloadable Whisper models (checksums from whisper.cpp's models/README.md) and where to download them.
/// A name may be given as <c>base.en</c>, <c>whisper-base.en</c> or <c>ggml-base.en.bin</c>.
/// </summary>
internal static class KnownWhisperModels
{
    public const string IdPrefix = "whisper-";

    /// <summary>The public whisper.cpp model location; the file name is appended.</summary>
    public const string DefaultBaseUrl = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main/";

    /// <summary>Where a person can fetch the files by hand.</summary>
    public const string HomePage = "https://huggingface.co/ggerganov/whisper.cpp";

    public static IReadOnlyList<KnownWhisperModel> All { get; } =
    [
        new("tiny.en", "ggml-tiny.en.bin", "c78c86eb1a8faa21b369bcd33207cc90d64ae9df", "75 MiB"),
        new("tiny", "ggml-tiny.bin", "bd577a113a864445d4c299885e0cb97d4ba92b5f", "75 MiB"),
        new("base.en", "ggml-base.en.bin", "137c40403d78fd54d454da0f9bd998f78703390c", "142 MiB"),
        new("base", "ggml-base.bin", "465707469ff3a37a2b9b8d8f89f2f99de7299dac", "142 MiB"),
    ];

    /// <summary>The short names, for help and error messages: <c>tiny.en, tiny, base.en, base</c>.</summary>
    public static string Names => string.Join(", ", All.Select(m => m.Name));

    public static KnownWhisperModel? Find(string name)
    {
        var shortName = ShortName(name);
        return All.FirstOrDefault(m => m.Name.Equals(shortName, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary><c>whisper-base.en</c> and <c>ggml-base.en.bin</c> → <c>base.en</c>; anything else is returned trimmed.</summary>
    public static string ShortName(string name)
    {
        var shortName = name.Trim();
        if (shortName.StartsWith(IdPrefix, StringComparison.OrdinalIgnoreCase))
        {
            return shortName[IdPrefix.Length..];
        }

        if (shortName.StartsWith("ggml-", StringComparison.OrdinalIgnoreCase) && shortName.EndsWith(".bin", StringComparison.OrdinalIgnoreCase))
        {
            return shortName["ggml-".Length..^".bin".Length];
        }

        return shortName;
    }

    /// <summary>The file name a model is stored under: <c>ggml-NAME.bin</c>, also for models not in <see cref="All"/>.</summary>
    public static string FileName(string name) => Find(name)?.FileName ?? $"ggml-{ShortName(name)}.bin";
}
