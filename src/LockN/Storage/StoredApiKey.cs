namespace LockN.Storage;

/// <summary>An API key as stored: the secret only as a hash, looked up by its public prefix. Times are Unix milliseconds.</summary>
public sealed class StoredApiKey
{
    public required string Id { get; set; }

    public required string Name { get; set; }

    /// <summary>The public part of the key (<c>lk_PREFIX_…</c>), unique, used to find the record.</summary>
    public required string Prefix { get; set; }

    /// <summary>HMAC-SHA256 (or SHA-256, see <see cref="HashScheme"/>) of the secret part.</summary>
    public required byte[] SecretHash { get; set; }

    public required string HashScheme { get; set; }

    /// <summary>Space-separated scope names.</summary>
    public required string Scopes { get; set; }

    public long CreatedAt { get; set; }

    public long? ExpiresAt { get; set; }

    public long? RevokedAt { get; set; }

    public long? LastUsedAt { get; set; }

    /// <summary>Requests per minute this key may make; null means the server default.</summary>
    public int? RequestsPerMinute { get; set; }

    /// <summary>Requests this key may have in flight at once; null means the server default.</summary>
    public int? MaxConcurrentRequests { get; set; }
}
