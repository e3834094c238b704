using System.Security.Claims;
using System.Text.Encodings.Web;
using LockN.Http;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace LockN.Keys;

/// <summary>
/// Authenticates <c>Authorization: Bearer lk_…</c> or <c>X-API-Key: lk_…</c> and answers refusals the way OpenAI
/// does: 401 for a missing, malformed, unknown, revoked or expired key, 403 for a key without the endpoint's scope,
/// 429 for an address that keeps failing.
/// </summary>
internal sealed partial class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    ApiKeyStore store,
    FailedAuthenticationThrottle throttle,
    IOptions<KeysOptions> keysOptions)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, loggerFactory, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string RequestsPerMinuteClaim = "lockn:requests_per_minute";
    public const string MaxConcurrentClaim = "lockn:max_concurrent";

    private static readonly object RefusalKey = new();

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = PresentedKey(Request);
        if (presented is null)
        {
            return AuthenticateResult.NoResult();
        }

        var address = Context.Connection.RemoteIpAddress;
        if (throttle.IsThrottled(address, out var retryAfter))
        {
            return Refuse(ApiError.TooManyFailedAttempts(retryAfter));
        }

        var (check, key) = await store.AuthenticateAsync(presented, Context.RequestAborted);
        if (check != ApiKeyCheck.Valid)
        {
            throttle.RecordFailure(address);
            var shown = key is null ? "the key provided" : ApiKeySecret.Redact(key.Prefix);
            var client = address?.ToString() ?? "?";
            LogRefused(Logger, check, key?.Id ?? "(none)", client);
            return Refuse(check switch
            {
                ApiKeyCheck.Malformed => ApiError.InvalidApiKey("The API key is malformed: LockN keys look like lk_XXXXXXXXXX_… (Authorization: Bearer KEY or X-API-Key: KEY)."),
                ApiKeyCheck.Revoked => ApiError.InvalidApiKey($"The API key {shown} has been revoked."),
                ApiKeyCheck.Expired => ApiError.InvalidApiKey($"The API key {shown} expired at {DateTimeOffset.FromUnixTimeMilliseconds(key!.ExpiresAt!.Value):u}."),
                _ => ApiError.InvalidApiKey("Incorrect API key provided. An administrator can list valid keys with GET /admin/keys or `lockn keys list`."),
            });
        }

        var settings = keysOptions.Value;
        List<Claim> claims =
        [
            new(ApiKeyClaims.KeyId, key!.Id),
            new(ApiKeyClaims.KeyName, key.Name),
            new(RequestsPerMinuteClaim, (key.RequestsPerMinute ?? settings.DefaultRequestsPerMinute).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new(MaxConcurrentClaim, (key.MaxConcurrentRequests ?? settings.DefaultMaxConcurrentRequests).ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ];
        claims.AddRange(ApiKeyScopes.Split(key.Scopes).Select(scope => new Claim(ApiKeyClaims.Scope, scope)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var error = Context.Items[RefusalKey] as ApiError ?? ApiError.MissingApiKey();
        return error.ToResult().ExecuteAsync(Context);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        var required = Context.GetEndpoint()?.Metadata.GetOrderedMetadata<IAuthorizeData>()
            .Select(data => data.Policy).LastOrDefault(policy => policy is not null && ApiKeyScopes.All.Contains(policy)) ?? "another";
        return ApiError.MissingScope(required).ToResult().ExecuteAsync(Context);
    }

    /// <summary>Prefix of a <c>Sec-WebSocket-Protocol</c> value that carries a key (browsers cannot set headers).</summary>
    public const string WebSocketKeyProtocolPrefix = "lockn-api-key.";

    /// <summary>
    /// The key from <c>Authorization: Bearer</c> or <c>X-API-Key</c>; for a WebSocket upgrade also from a
    /// <c>lockn-api-key.KEY</c> subprotocol or the <c>api_key</c> query parameter. Null when none is there.
    /// </summary>
    public static string? PresentedKey(HttpRequest request)
    {
        if (request.Headers.Authorization.ToString() is { Length: > 0 } authorization)
        {
            return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization[7..].Trim() : authorization.Trim();
        }

        if (request.Headers["X-API-Key"].ToString() is { Length: > 0 } header)
        {
            return header.Trim();
        }

        if (!request.HttpContext.WebSockets.IsWebSocketRequest)
        {
            return null;
        }

        foreach (var protocol in request.HttpContext.WebSockets.WebSocketRequestedProtocols)
        {
            if (protocol.StartsWith(WebSocketKeyProtocolPrefix, StringComparison.Ordinal))
            {
                return protocol[WebSocketKeyProtocolPrefix.Length..];
            }
        }

        return request.Query["api_key"].ToString() is { Length: > 0 } query ? query : null;
    }

    private AuthenticateResult Refuse(ApiError error)
    {
        Context.Items[RefusalKey] = error;
        return AuthenticateResult.Fail(error.Message);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "API key refused ({Check}, key {KeyId}) from {Address}")]
    private static partial void LogRefused(ILogger logger, ApiKeyCheck check, string keyId, string address);
}
