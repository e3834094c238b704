using System.ComponentModel.DataAnnotations;

namespace LockN.Keys;

/// <summary>Settings of the <c>Keys</c> configuration section.</summary>
internal sealed record KeysOptions
{
    public const string Section = "Keys";

    /// <summary>Root key (env <c>LOCKN_ADMIN_KEY</c>) holding an admin key to seed at start-up.</summary>
    public const string AdminKeyConfigurationKey = "ADMIN_KEY";

    /// <summary>
    /// Whether /v1 endpoints need a key. Off only for a trusted network or to measure the cost of authentication;
    /// /admin always needs an admin key.
    /// </summary>
    public bool Required { get; init; } = true;

    /// <summary>Server secret for HMAC key hashes; must be the same on every node sharing a database.</summary>
    public string? HashSecret { get; init; }

    /// <summary>
    /// How long a node trusts what it read about a key. A key revoked on one node is refused by the others
    /// within this time (plus one database read).
    /// </summary>
    [Range(0, 60)]
    public double CacheSeconds { get; init; } = 2;

    /// <summary>Requests per minute for keys that do not set their own limit.</summary>
    [Range(1, 1_000_000)]
    public int DefaultRequestsPerMinute { get; init; } = 600;

    /// <summary>Requests in flight at once for keys that do not set their own limit.</summary>
    [Range(1, 10_000)]
    public int DefaultMaxConcurrentRequests { get; init; } = 32;

    /// <summary>Failed authentications one client address may make per minute before it gets 429.</summary>
    [Range(1, 1_000_000)]
    public int FailedAttemptsPerMinute { get; init; } = 30;

    /// <summary>How often last-used times are written (they are kept in memory in between).</summary>
    [Range(1, 3600)]
    public int LastUsedFlushSeconds { get; init; } = 30;
}
