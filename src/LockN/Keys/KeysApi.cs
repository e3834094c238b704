using System.Text.Json;
using System.Text.Json.Serialization;
using LockN.Http;

namespace LockN.Keys;

/// <summary>The JSON shape of a key in /admin/keys responses (times in Unix seconds, like OpenAI's objects).</summary>
public sealed record ApiKeyResource(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("object")] string Kind,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("prefix")] string Prefix,
    [property: JsonPropertyName("scopes")] IReadOnlyList<string> Scopes,
    [property: JsonPropertyName("created_at")] long CreatedAt,
    [property: JsonPropertyName("expires_at")] long? ExpiresAt,
    [property: JsonPropertyName("revoked_at")] long? RevokedAt,
    [property: JsonPropertyName("last_used_at")] long? LastUsedAt,
    [property: JsonPropertyName("requests_per_minute")] int? RequestsPerMinute,
    [property: JsonPropertyName("max_concurrent_requests")] int? MaxConcurrentRequests,
    [property: JsonPropertyName("key"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key)
{
    public static ApiKeyResource From(ApiKeyInfo key) => new(
        key.Id, "api_key", key.Name, key.Prefix, key.Scopes, key.CreatedAt.ToUnixTimeSeconds(), key.ExpiresAt?.ToUnixTimeSeconds(),
        key.RevokedAt?.ToUnixTimeSeconds(), key.LastUsedAt?.ToUnixTimeSeconds(), key.RequestsPerMinute, key.MaxConcurrentRequests, key.Key);
}

/// <summary>Body of POST /admin/keys.</summary>
public sealed record CreateKeyBody(
    [property: JsonPropertyName("name")] string? Name,
    [property: JsonPropertyName("scopes")] IReadOnlyList<string>? Scopes,
    [property: JsonPropertyName("expires_at")] long? ExpiresAt,
    [property: JsonPropertyName("expires_in_days")] double? ExpiresInDays,
    [property: JsonPropertyName("requests_per_minute")] int? RequestsPerMinute,
    [property: JsonPropertyName("max_concurrent_requests")] int? MaxConcurrentRequests);

/// <summary>POST/GET /admin/keys, GET/DELETE /admin/keys/{id}: key management for operators (scope <c>admin</c>).</summary>
public static class KeysApi
{
    public static IEndpointRouteBuilder MapKeysApi(this IEndpointRouteBuilder admin)
    {
        admin.MapPost("/keys", CreateAsync);
        admin.MapGet("/keys", async (ApiKeyStore store, CancellationToken ct) =>
            TypedResults.Ok(new { @object = "list", data = (await store.ListAsync(ct)).Select(ApiKeyResource.From) }));
        admin.MapGet("/keys/{id}", async (string id, ApiKeyStore store, CancellationToken ct) =>
            await store.GetAsync(id, ct) is { } key ? Results.Ok(ApiKeyResource.From(key)) : NotFound(id).ToResult());
        admin.MapDelete("/keys/{id}", async (string id, ApiKeyStore store, CancellationToken ct) =>
            await store.RevokeAsync(id, ct) is { } key ? Results.Ok(ApiKeyResource.From(key)) : NotFound(id).ToResult());
        return admin;
    }

    private static async Task<IResult> CreateAsync(HttpContext context, ApiKeyStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        CreateKeyBody? body;
        try
        {
            body = await JsonSerializer.DeserializeAsync<CreateKeyBody>(context.Request.Body, cancellationToken: cancellationToken);
        }
        catch (JsonException ex)
        {
            return ApiError.BadRequest($"The body is not valid JSON for a key: {ex.Message}").ToResult();
        }

        var (request, error) = Validate(body, time.GetUtcNow());
        if (error is not null)
        {
            return error.ToResult();
        }

        var created = await store.CreateAsync(request!, cancellationToken);
        return Results.Created($"/admin/keys/{created.Id}", ApiKeyResource.From(created));
    }

    /// <summary>Checks a create request; shared with <c>lockn keys create</c>.</summary>
    public static (ApiKeyRequest? Request, ApiError? Error) Validate(CreateKeyBody? body, DateTimeOffset now)
    {
        if (body is null)
        {
            return (null, ApiError.BadRequest("Send a JSON body such as {\"name\":\"ci\",\"scopes\":[\"transcribe\"]}."));
        }

        if (string.IsNullOrWhiteSpace(body.Name) || body.Name.Length > 200)
        {
            return (null, ApiError.BadRequest("'name' is required (at most 200 characters).", "name"));
        }

        var (scopes, scopeError) = ApiKeyScopes.Parse(body.Scopes ?? []);
        if (scopeError is not null)
        {
            return (null, ApiError.BadRequest(scopeError, "scopes"));
        }

        DateTimeOffset? expires = null;
        if (body.ExpiresAt is not null && body.ExpiresInDays is not null)
        {
            return (null, ApiError.BadRequest("Give 'expires_at' or 'expires_in_days', not both.", "expires_at"));
        }

        if (body.ExpiresAt is { } at)
        {
            if (at <= now.ToUnixTimeSeconds() || at > DateTimeOffset.MaxValue.ToUnixTimeSeconds())
            {
                return (null, ApiError.BadRequest("'expires_at' must be a Unix time in the future.", "expires_at"));
            }

            expires = DateTimeOffset.FromUnixTimeSeconds(at);
        }

        if (body.ExpiresInDays is { } days)
        {
            if (days is <= 0 or > 36_500)
            {
                return (null, ApiError.BadRequest("'expires_in_days' must be between 0 and 36500.", "expires_in_days"));
            }

            expires = now.AddDays(days);
        }

        if (body.RequestsPerMinute is <= 0)
        {
            return (null, ApiError.BadRequest("'requests_per_minute' must be positive.", "requests_per_minute"));
        }

        if (body.MaxConcurrentRequests is <= 0)
        {
            return (null, ApiError.BadRequest("'max_concurrent_requests' must be positive.", "max_concurrent_requests"));
        }

        return (new ApiKeyRequest(body.Name.Trim(), scopes!, expires, body.RequestsPerMinute, body.MaxConcurrentRequests), null);
    }

    private static ApiError NotFound(string id) =>
        new(StatusCodes.Status404NotFound, $"No API key with id '{id}'.", "invalid_request_error", "id", "key_not_found");
}
