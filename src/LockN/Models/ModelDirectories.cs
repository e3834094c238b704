namespace LockN.Models;

/// <summary>
/// The directories searched for model files, in order. Configured by the root key <c>Models</c>
/// (<c>--models</c>, <c>LOCKN_MODELS</c>) as one path or several separated by ';'.
/// The first directory is where <c>lockn models pull</c> writes.
/// </summary>
internal sealed record ModelDirectories(IReadOnlyList<string> Paths)
{
    public const string ConfigurationKey = "Models";

    public string PullTarget => Paths[0];

    public static ModelDirectories Parse(string? value)
    {
        var paths = (value ?? "models")
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(Path.GetFullPath)
            .ToArray();
        return new ModelDirectories(paths.Length == 0 ? [Path.GetFullPath("models")] : paths);
    }

    public static ModelDirectories FromConfiguration(IConfiguration configuration) =>
        Parse(configuration[ConfigurationKey]);

    /// <summary>
    /// A model file by name: a rooted path as it is, else the first file of that name under any model directory
    /// (searched recursively, so ../shared/models works as it is). Null when there is none.
    /// </summary>
    public string? Find(string file)
    {
        if (Path.IsPathRooted(file))
        {
            return File.Exists(file) ? file : null;
        }

        return Paths
            .Where(Directory.Exists)
            .SelectMany(dir => Directory.EnumerateFiles(dir, Path.GetFileName(file), new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }))
            .FirstOrDefault();
    }

    public override string ToString() => string.Join(", ", Paths);
}
