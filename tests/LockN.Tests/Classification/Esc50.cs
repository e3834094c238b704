namespace LockN.Tests.Classification;

/// <summary>The labelled ESC-50 clips in ../shared/audio/esc50 and the YAMNet names that count as right for each category.</summary>
public static class Esc50
{
    public sealed record Clip(string Path, string Category);

    public static IReadOnlyList<Clip> Clips { get; } = File.ReadLines(System.IO.Path.Combine(TestAssets.Esc50, "labels.csv"))
        .Skip(1)
        .Where(line => line.Length > 0)
        .Select(line => line.Split(','))
        .Select(fields => new Clip(System.IO.Path.Combine(TestAssets.Esc50, fields[0]), fields[1]))
        .ToList();

    /// <summary>category → accepted YAMNet display names (the file quotes names that contain commas).</summary>
    public static IReadOnlyDictionary<string, HashSet<string>> AcceptedNames { get; } = File.ReadLines(System.IO.Path.Combine(TestAssets.Esc50, "esc50_to_audioset.csv"))
        .Skip(1)
        .Where(line => line.Length > 0)
        .ToDictionary(
            line => line[..line.IndexOf(',', StringComparison.Ordinal)],
            line => line[(line.IndexOf(',', StringComparison.Ordinal) + 1)..].Split('|').Select(name => name.Trim().Trim('"')).ToHashSet(StringComparer.Ordinal));
}
