namespace LockN.Storage;

/// <summary>One row of the usage ledger: one API request and what it consumed.</summary>
public sealed class UsageRecord
{
    public long Id { get; set; }

    /// <summary>When the request ended, Unix milliseconds.</summary>
    public long At { get; set; }

    /// <summary>The key that made the request; null when it did not authenticate.</summary>
    public string? KeyId { get; set; }

    public required string Endpoint { get; set; }

    public string? Model { get; set; }

    public double AudioSeconds { get; set; }

    public long TokensIn { get; set; }

    public long TokensOut { get; set; }

    public int StatusCode { get; set; }

    public double LatencyMs { get; set; }

    /// <summary>The LockN node that served it, when several share one database.</summary>
    public required string Node { get; set; }
}
