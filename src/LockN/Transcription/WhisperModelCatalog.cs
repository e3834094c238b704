using System.Text.RegularExpressions;
using LockN.Models;

namespace LockN.Transcription;

/// <summary>A Whisper model file found on disk.</summary>
/// <param name="Id">The model id clients send, e.g. <c>whisper-base.en</c>.</param>
/// <param name="Path">Full path of the GGML file.</param>
/// <param name="IsTestWeights">True for <c>for-tests-ggml-*.bin</c>: real format, no trained weights.</param>
/// <param name="IsEnglishOnly">True for <c>.en</c> models, which can neither detect languages nor translate.</param>
internal sealed record WhisperModelFile(string Id, string Path, bool IsTestWeights, bool IsEnglishOnly);

/// <summary>
/// Finds Whisper GGML files in the model directories (recursively) and names them by file name:
/// <c>ggml-base.en.bin</c> → <c>whisper-base.en</c>; <c>for-tests-ggml-tiny.en.bin</c> → <c>whisper-tiny.en</c>.
/// Real weights win over test weights of the same id; earlier directories win over later ones.
/// </summary>
internal static partial class WhisperModelCatalog
{
    public const string OpenAiAlias = "whisper-1";

    public static IReadOnlyList<WhisperModelFile> Scan(ModelDirectories directories)
    {
        var found = new Dictionary<string, WhisperModelFile>(StringComparer.OrdinalIgnoreCase);
        foreach (var directory in directories.Paths.Where(Directory.Exists))
        {
            var files = Directory.EnumerateFiles(directory, "*.bin", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true })
                .Order(StringComparer.Ordinal);
            foreach (var path in files)
            {
                if (TryParse(path) is not { } model)
                {
                    continue;
                }

                if (!found.TryGetValue(model.Id, out var existing) || (existing.IsTestWeights && !model.IsTestWeights))
                {
                    found[model.Id] = model;
                }
            }
        }

        return found.Values.OrderBy(m => m.Id, StringComparer.Ordinal).ToArray();
    }

    public static WhisperModelFile? TryParse(string path)
    {
        var match = FileNamePattern().Match(System.IO.Path.GetFileName(path));
        if (!match.Success)
        {
            return null;
        }

        var name = match.Groups["name"].Value;
        return new WhisperModelFile("whisper-" + name, path, match.Groups["tests"].Success, IsEnglishOnlyName(name));
    }

    public static bool IsEnglishOnlyFile(string path) => TryParse(path)?.IsEnglishOnly ?? false;

    private static bool IsEnglishOnlyName(string name) => name.EndsWith(".en", StringComparison.Ordinal) || name.Contains(".en-", StringComparison.Ordinal);

    // Whisper sizes only: silero VAD or other ggml files in the same tree are not transcription models.
    [GeneratedRegex(@"^(?<tests>for-tests-)?ggml-(?<name>(tiny|base|small|medium|large|turbo)[A-Za-z0-9.\-_]*)\.bin$")]
    private static partial Regex FileNamePattern();
}
