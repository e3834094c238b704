using System.Text.Json.Serialization;

namespace LockN.Storage;

/// <summary>One row of the usage ledger: one API request and what it consumed.</summary>
public sealed class UsageRecord
{
    [JsonIgnore]
    public long Id { get; set; }

    /// <summary>
    /// The record's name in the node's usage journal, unique across nodes; null on rows from before the journal.
    /// Replaying a journal after a crash skips the records whose name is already in the ledger.
    /// </summary>
    public Guid? JournalId { get; set; }

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
