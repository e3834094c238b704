using System.Collections.Concurrent;
using LockN.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace LockN.Keys;

/// <summary>Outcome of checking a presented key.</summary>
internal enum ApiKeyCheck
{
    Valid,
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

/// <summary>A key as the API shows it: never the secret, except <see cref="Key"/> once, right after creation.</summary>
internal sealed record ApiKeyInfo(
    string Id,
    string Name,
    string Prefix,
    IReadOnlyList<string> Scopes,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset? RevokedAt,
    DateTimeOffset? LastUsedAt,
    int? RequestsPerMinute,
    int? MaxConcurrentRequests,
    string? Key = null)
{
    public static ApiKeyInfo From(StoredApiKey key) => new(
        key.Id, key.Name, key.Prefix, ApiKeyScopes.Split(key.Scopes), Time(key.CreatedAt), TimeOrNull(key.ExpiresAt),
        TimeOrNull(key.RevokedAt), TimeOrNull(key.LastUsedAt), key.RequestsPerMinute, key.MaxConcurrentRequests);

    private static DateTimeOffset Time(long unixMs) => DateTimeOffset.FromUnixTimeMilliseconds(unixMs);

    private static DateTimeOffset? TimeOrNull(long? unixMs) => unixMs is { } value ? Time(value) : null;
}

/// <summary>What a new key should be.</summary>
internal sealed record ApiKeyRequest(string Name, IReadOnlyList<string> Scopes, DateTimeOffset? ExpiresAt, int? RequestsPerMinute, int? MaxConcurrentRequests);

/// <summary>
/// Creates, finds and revokes keys. Lookups by prefix are cached for <see cref="KeysOptions.CacheSeconds"/>, so
/// authentication costs a hash and a dictionary read, and a key revoked on another node is refused within that
/// time. Last-used times are collected in memory and written in batches.
/// </summary>
internal sealed class ApiKeyStore(LockNDatabase database, ApiKeyHasher hasher, IOptions<KeysOptions> options, TimeProvider time)
{
    // Unknown prefixes are cached too, so a flood of made-up keys does not become a flood of queries; the cache is
    // cleared when it grows past this, which bounds its memory.
    private const int MaxCachedPrefixes = 50_000;

    private readonly ConcurrentDictionary<string, CachedKey> cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> lastUsed = new(StringComparer.Ordinal);

    public async Task<(ApiKeyCheck Check, StoredApiKey? Key)> AuthenticateAsync(string presented, CancellationToken cancellationToken)
    {
        if (!ApiKeySecret.TryParse(presented, out var prefix, out var secret))
        {
            return (ApiKeyCheck.Malformed, null);
        }

        var key = await FindByPrefixAsync(prefix, cancellationToken);
        if (key is null || !hasher.Matches(secret, key.HashScheme, key.SecretHash))
        {
            return (ApiKeyCheck.Unknown, null);
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (key.RevokedAt is not null)
        {
            return (ApiKeyCheck.Revoked, key);
        }

        if (key.ExpiresAt is { } expires && expires <= now)
        {
            return (ApiKeyCheck.Expired, key);
        }

        lastUsed[key.Id] = now;
        return (ApiKeyCheck.Valid, key);
    }

    public async Task<ApiKeyInfo> CreateAsync(ApiKeyRequest request, CancellationToken cancellationToken)
    {
        var (key, prefix, secret) = ApiKeySecret.Generate();
        var stored = await InsertAsync(request, prefix, secret, cancellationToken);
        return ApiKeyInfo.From(stored) with { Key = key };
    }

    /// <summary>Stores a key whose secret was chosen elsewhere (LOCKN_ADMIN_KEY); false when its prefix is taken.</summary>
    public async Task<bool> ImportAsync(string presented, ApiKeyRequest request, CancellationToken cancellationToken)
    {
        if (!ApiKeySecret.TryParse(presented, out var prefix, out var secret))
        {
            throw new ArgumentException("not a LockN key", nameof(presented));
        }

        await using var db = database.Open();
        if (await db.ApiKeys.AnyAsync(k => k.Prefix == prefix, cancellationToken))
        {
            return false;
        }

        await InsertAsync(request, prefix, secret, cancellationToken);
        return true;
    }

    public async Task<bool> AnyAsync(CancellationToken cancellationToken)
    {
        await using var db = database.Open();
        return await db.ApiKeys.AnyAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<ApiKeyInfo>> ListAsync(CancellationToken cancellationToken)
    {
        await using var db = database.Open();
        var keys = await db.ApiKeys.AsNoTracking().OrderBy(k => k.CreatedAt).ToListAsync(cancellationToken);
        return keys.Select(ApiKeyInfo.From).ToList();
    }

    public async Task<ApiKeyInfo?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await using var db = database.Open();
        return await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Id == id, cancellationToken) is { } key ? ApiKeyInfo.From(key) : null;
    }

    /// <summary>Revokes a key (idempotent); null when there is no such key.</summary>
    public async Task<ApiKeyInfo?> RevokeAsync(string id, CancellationToken cancellationToken)
    {
        await using var db = database.Open();
        if (await db.ApiKeys.FirstOrDefaultAsync(k => k.Id == id, cancellationToken) is not { } key)
        {
            return null;
        }

        key.RevokedAt ??= time.GetUtcNow().ToUnixTimeMilliseconds();
        await db.SaveChangesAsync(cancellationToken);
        cache.TryRemove(key.Prefix, out _);
        return ApiKeyInfo.From(key);
    }

    /// <summary>Writes the last-used times collected since the previous flush, one statement per key.</summary>
    public async Task FlushLastUsedAsync(CancellationToken cancellationToken)
    {
        if (lastUsed.IsEmpty)
        {
            return;
        }

        await using var db = database.Open();
        foreach (var id in lastUsed.Keys)
        {
            if (lastUsed.TryRemove(id, out var at))
            {
                await db.ApiKeys.Where(k => k.Id == id && (k.LastUsedAt == null || k.LastUsedAt < at))
                    .ExecuteUpdateAsync(set => set.SetProperty(k => k.LastUsedAt, at), cancellationToken);
            }
        }
    }

    private async Task<StoredApiKey> InsertAsync(ApiKeyRequest request, string prefix, string secret, CancellationToken cancellationToken)
    {
        var scheme = hasher.CurrentScheme;
        var stored = new StoredApiKey
        {
            Id = "key_" + prefix,
            Name = request.Name,
            Prefix = prefix,
            SecretHash = hasher.Hash(secret, scheme),
            HashScheme = scheme,
            Scopes = ApiKeyScopes.Join(request.Scopes),
            CreatedAt = time.GetUtcNow().ToUnixTimeMilliseconds(),
            ExpiresAt = request.ExpiresAt?.ToUnixTimeMilliseconds(),
            RequestsPerMinute = request.RequestsPerMinute,
            MaxConcurrentRequests = request.MaxConcurrentRequests,
        };
        await using var db = database.Open();
        db.ApiKeys.Add(stored);
        await db.SaveChangesAsync(cancellationToken);
        cache.TryRemove(prefix, out _);
        return stored;
    }

    private async Task<StoredApiKey?> FindByPrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        if (cache.TryGetValue(prefix, out var cached) && time.GetElapsedTime(cached.FetchedAt, now).TotalSeconds < options.Value.CacheSeconds)
        {
            return cached.Key;
        }

        await using var db = database.Open();
        var key = await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Prefix == prefix, cancellationToken);
        if (cache.Count >= MaxCachedPrefixes)
        {
            cache.Clear();
        }

        cache[prefix] = new CachedKey(key, now);
        return key;
    }

    private sealed record CachedKey(StoredApiKey? Key, long FetchedAt);
}
