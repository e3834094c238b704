namespace LockN.Keys;

/// <summary>What a key may do. Each scope is also the name of the authorization policy that requires it.</summary>
internal static class ApiKeyScopes
{
    public const string Transcribe = "transcribe";
    public const string Classify = "classify";
    public const string Stream = "stream";
    public const string Chat = "chat";
    public const string Admin = "admin";

    /// <summary>The policy for endpoints any valid key may call (e.g. GET /v1/models).</summary>
    public const string AnyKey = "any_key";

    public static IReadOnlyList<string> All { get; } = [Transcribe, Classify, Stream, Chat, Admin];

    /// <summary>Parses scope names (case-insensitive, de-duplicated); the error names the first unknown one.</summary>
    public static (IReadOnlyList<string>? Scopes, string? Error) Parse(IEnumerable<string> names)
    {
        var scopes = new List<string>();
        foreach (var raw in names)
        {
            var name = raw.Trim().ToLowerInvariant();
            if (name.Length == 0)
            {
                continue;
            }

            if (!All.Contains(name))
            {
                return (null, $"Unknown scope '{raw}'. Scopes are: {string.Join(", ", All)}.");
            }

            if (!scopes.Contains(name))
            {
                scopes.Add(name);
            }
        }

        return scopes.Count == 0 ? (null, $"At least one scope is needed: {string.Join(", ", All)}.") : (scopes, null);
    }

    public static string Join(IEnumerable<string> scopes) => string.Join(' ', scopes);

    public static string[] Split(string stored) => stored.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}
