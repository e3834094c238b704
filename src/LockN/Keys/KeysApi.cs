using System.Text.Json.Serialization;
using LockN.Http;

namespace LockN.Keys;

/// <summary>The JSON shape of a key in /admin/keys responses (times in Unix seconds, like OpenAI's objects).</summary>
internal sealed record ApiKeyResource(
    string Id,
    string Object,
    string Name,
    string Prefix,
    IReadOnlyList<string> Scopes,
    long CreatedAt,
    long? ExpiresAt,
    long? RevokedAt,
    long? LastUsedAt,
    int? RequestsPerMinute,
    int? MaxConcurrentRequests,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key)
{
    public static ApiKeyResource From(ApiKeyInfo key) => new(
        key.Id, "api_key", key.Name, key.Prefix, key.Scopes, key.CreatedAt.ToUnixTimeSeconds(), key.ExpiresAt?.ToUnixTimeSeconds(),
        key.RevokedAt?.ToUnixTimeSeconds(), key.LastUsedAt?.ToUnixTimeSeconds(), key.RequestsPerMinute, key.MaxConcurrentRequests, key.Key);
}

/// <summary>Body of POST /admin/keys.</summary>
internal sealed record CreateKeyBody(
    string? Name,
    IReadOnlyList<string>? Scopes,
    long? ExpiresAt,
    double? ExpiresInDays,
    int? RequestsPerMinute,
    int? MaxConcurrentRequests);

/// <summary>POST/GET /admin/keys, GET/DELETE /admin/keys/{id}: key management for operators (scope <c>admin</c>).</summary>
internal static class KeysApi
{
    private const string Example = "{\"name\":\"ci\",\"scopes\":[\"transcribe\"]}";

    public static IEndpointRouteBuilder MapKeysApi(this IEndpointRouteBuilder admin)
    {
        admin.MapPost("/keys", CreateAsync);
        admin.MapGet("/keys", async (ApiKeyStore store, CancellationToken ct) =>
            TypedResults.Ok(new ObjectList<ApiKeyResource>([.. (await store.ListAsync(ct)).Select(ApiKeyResource.From)])));
        admin.MapGet("/keys/{id}", async (string id, ApiKeyStore store, CancellationToken ct) =>
            await store.GetAsync(id, ct) is { } key ? Results.Ok(ApiKeyResource.From(key)) : NotFound(id).ToResult());
        admin.MapDelete("/keys/{id}", async (string id, ApiKeyStore store, CancellationToken ct) =>
            await store.RevokeAsync(id, ct) is { } key ? Results.Ok(ApiKeyResource.From(key)) : NotFound(id).ToResult());
        return admin;
    }

    private static async Task<IResult> CreateAsync(HttpContext context, ApiKeyStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        var (body, bodyError) = await JsonBody.ReadAsync(context.Request, LockNJson.Context.CreateKeyBody, Example, cancellationToken);
        if (bodyError is not null)
        {
            return bodyError.ToResult();
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
            return (null, ApiError.BadRequest($"Send a JSON body such as {Example}."));
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
