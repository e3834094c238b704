using System.Collections.Concurrent;
using System.Net;
using System.Security.Claims;
using LockN.Keys;
using Microsoft.Extensions.Options;

namespace LockN.WebConsole;

/// <summary>
/// Console sessions: an API key pasted once becomes a cookie session that carries the key's id, name and scopes —
/// never the key itself. A session lives only as long as its key: revoked or expired, it ends within
/// <c>Keys:CacheSeconds</c> (each key's state is read again once that long has passed).
/// </summary>
internal sealed class ConsoleSessions(ApiKeyStore store, FailedAuthenticationThrottle throttle, IOptions<KeysOptions> keys, TimeProvider time)
{
    public const string Scheme = "LockN.WebConsole";

    /// <summary>Authorization policy of every console page that needs a session.</summary>
    public const string SignedIn = "console";

    /// <summary>Authorization policy of the console's admin pages (keys, usage).</summary>
    public const string Admin = "console_admin";

    private readonly ConcurrentDictionary<string, (bool Valid, long CheckedAt)> checkedKeys = new(StringComparer.Ordinal);

    public TimeSpan RecheckAfter => TimeSpan.FromSeconds(keys.Value.CacheSeconds);

    /// <summary>The session's principal for a pasted key, or the reason it is refused, in words for the sign-in page.</summary>
    public async Task<(ClaimsPrincipal? Principal, string? Refusal)> SignInAsync(string? presented, IPAddress? address, CancellationToken cancellationToken)
    {
        if (throttle.IsThrottled(address, out var retryAfter))
        {
            return (null, $"Too many failed sign-ins from this address. Try again in {Math.Ceiling(retryAfter.TotalSeconds):0} s.");
        }

        var (check, key) = string.IsNullOrWhiteSpace(presented) ? (ApiKeyCheck.Malformed, null) : await store.AuthenticateAsync(presented.Trim(), cancellationToken);
        if (check != ApiKeyCheck.Valid)
        {
            throttle.RecordFailure(address);
            return (null, check switch
            {
                ApiKeyCheck.Revoked => "This key has been revoked.",
                ApiKeyCheck.Expired => "This key has expired.",
                ApiKeyCheck.Malformed => "That is not a LockN key: keys look like lk_XXXXXXXXXX_…",
                _ => "No such key. An administrator can create one on the Keys page or with `lockn keys create`.",
            });
        }

        List<Claim> claims = [new(ApiKeyClaims.KeyId, key!.Id), new(ApiKeyClaims.KeyName, key.Name), new(ClaimTypes.Name, key.Name)];
        claims.AddRange(ApiKeyScopes.Split(key.Scopes).Select(scope => new Claim(ApiKeyClaims.Scope, scope)));
        checkedKeys[key.Id] = (true, time.GetTimestamp());
        return (new ClaimsPrincipal(new ClaimsIdentity(claims, Scheme, ClaimTypes.Name, null)), null);
    }

    /// <summary>Whether the session's key still exists, is not revoked and has not expired; read again after <see cref="RecheckAfter"/>.</summary>
    public async Task<bool> IsValidAsync(ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        if (principal.FindFirst(ApiKeyClaims.KeyId)?.Value is not { } keyId)
        {
            return false;
        }

        if (checkedKeys.TryGetValue(keyId, out var known) && time.GetElapsedTime(known.CheckedAt) < RecheckAfter)
        {
            return known.Valid;
        }

        var key = await store.GetAsync(keyId, cancellationToken);
        var valid = key is { RevokedAt: null } && (key.ExpiresAt is null || key.ExpiresAt > time.GetUtcNow());
        checkedKeys[keyId] = (valid, time.GetTimestamp());
        return valid;
    }
}
