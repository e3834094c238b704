using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using LockN.Hosting;

namespace LockN.Http;

/// <summary>Reads a JSON request body; a wrong type is a 400 naming the field, in LockN's words (never a .NET type name).</summary>
internal static class JsonBody
{
    public static async Task<(T? Body, ApiError? Error)> ReadAsync<T>(HttpRequest request, JsonTypeInfo<T> typeInfo, string example, CancellationToken cancellationToken)
    {
        try
        {
            return (await JsonSerializer.DeserializeAsync(request.Body, typeInfo, cancellationToken), null);
        }
        catch (JsonException ex)
        {
            return (default, Describe(ex, typeInfo, example));
        }
        catch (BadHttpRequestException ex)
        {
            if (await ClientAbort.IsClientGoneAsync(request.HttpContext, ex))
            {
                throw; // logged once by the abort logging
            }

            return (default, RequestBodyFailure.Describe(request.HttpContext, ex));
        }
    }

    private static ApiError Describe(JsonException ex, JsonTypeInfo typeInfo, string example)
    {
        // A syntax error comes from the reader (an inner JsonException); otherwise a value had the wrong type. Its path
        // is "$.scopes" or "$.scopes[0]": the top-level field is what a client can act on.
        var syntaxError = ex.InnerException is JsonException;
        var field = !syntaxError && ex.Path is { Length: > 2 } path && path.StartsWith("$.", StringComparison.Ordinal)
            ? path[2..].Split('[', '.')[0]
            : null;
        if (field is null || typeInfo.Properties.FirstOrDefault(p => p.Name == field) is not { } property)
        {
            var where = ex.LineNumber is { } line ? $" (line {line + 1}, byte {ex.BytePositionInLine + 1})" : "";
            return ApiError.BadRequest($"The body is not valid JSON{where}. Send an object such as {example}.", code: "invalid_json");
        }

        return ApiError.BadRequest($"'{field}' must be {ExpectedValue.Describe(property.PropertyType)}.", field, "invalid_type");
    }
}
