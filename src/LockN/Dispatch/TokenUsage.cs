using System.Text.Json;

namespace LockN.Dispatch;

/// <summary>Token counts from a backend's OpenAI-style <c>usage</c> object.</summary>
internal readonly record struct TokenUsage(long In, long Out)
{
    public static TokenUsage? From(JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var prompt = Read(usage, "prompt_tokens");
        var completion = Read(usage, "completion_tokens");
        return new TokenUsage(prompt, completion);
    }

    public static TokenUsage? From(ReadOnlySpan<byte> usageJson)
    {
        try
        {
            var reader = new Utf8JsonReader(usageJson);
            return JsonElement.TryParseValue(ref reader, out var element) && element is { } value ? From(value) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static long Read(JsonElement usage, string name) =>
        usage.TryGetProperty(name, out var value) && value.TryGetInt64(out var count) && count >= 0 ? count : 0;
}
