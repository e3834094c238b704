using System.ComponentModel.DataAnnotations;

namespace LockN.Usage;

/// <summary>Settings of the <c>Usage</c> configuration section: how the ledger writer queues and batches.</summary>
internal sealed record UsageOptions
{
    public const string Section = "Usage";

    /// <summary>Root key naming this node in the ledger when several share one database.</summary>
    public const string NodeKey = "Node";

    /// <summary>Whether requests are recorded at all (off only to measure what recording costs).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Records that may wait for the database; beyond that new ones are dropped (and counted), never waited for.</summary>
    [Range(1, 10_000_000)]
    public int QueueCapacity { get; init; } = 100_000;

    /// <summary>Most records written by one SaveChanges.</summary>
    [Range(1, 100_000)]
    public int BatchSize { get; init; } = 500;

    /// <summary>How long the writer waits for a batch to fill before it writes what it has.</summary>
    [Range(0, 60_000)]
    public int FlushIntervalMilliseconds { get; init; } = 1000;

    /// <summary>
    /// Whether each queued record is also appended to the usage journal in the data directory, so that a killed
    /// process loses none (the journal is replayed at the next start). Off, a kill loses what was still queued.
    /// </summary>
    public bool Journal { get; init; } = true;

    /// <summary>
    /// How often the journal is forced to disk (fsync) while it has new records; 0 = never, leaving it to the OS's
    /// writeback of dirty pages (up to 30 s on Linux by default). This bounds what a power loss can take; a killed
    /// process loses nothing either way.
    /// </summary>
    [Range(0, 3_600_000)]
    public int JournalFsyncIntervalMilliseconds { get; init; } = 1000;

    /// <summary>Retries of a batch the database refused, with doubling delays from 0.5 s, before it is given up.</summary>
    [Range(0, 10)]
    public int WriteRetries { get; init; } = 3;
}
