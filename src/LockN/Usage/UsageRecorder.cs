using System.Threading.Channels;
using LockN.Storage;

namespace LockN.Usage;

/// <summary>
/// The usage ledger's writer. Requests hand their record to a bounded queue and never wait: a full queue drops the
/// record and counts it. A queued record is also appended to the <see cref="UsageJournal"/> (unless it is off), so a
/// killed process loses none. One writer thread takes the queue in batches (one SaveChanges each), retrying a batch the
/// database refused, and trims the journal behind it; a graceful stop closes the queue and writes everything in it
/// before returning. At start-up the writer first replays what an earlier run left in the journal.
/// </summary>
/// <remarks>
/// Exactly once: each record has a unique <see cref="UsageRecord.JournalId"/>. A run writes the records it queued once
/// and deletes a journal segment only after all of its records are committed; a replay inserts only the records
/// whose id the ledger does not have, so a crash between a batch's commit and the deletion duplicates nothing.
/// </remarks>
internal sealed partial class UsageRecorder : IHostedService, IDisposable
{
    private static readonly TimeSpan DropWarningInterval = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(500);

    private readonly Channel<JournalEntry> queue;
    private readonly UsageJournal? journal;
    private readonly LockNDatabase database;
    private readonly UsageOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;

    // Cancelled when the host stops: the writer no longer waits for a batch to fill.
    private readonly CancellationTokenSource stopping = new();

    // Cancelled when the host stops waiting for us: the writer gives up what is left.
    private readonly CancellationTokenSource abandon = new();

    private readonly TaskCompletionSource finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ITimer? syncTimer;
    private int syncing;
    private bool started;
    private long dropped;
    private long lost;
    private long written;
    private long replayed;
    private long nextDropWarning;

    /// <param name="journalDirectory">Where the journal lives; null (or <see cref="UsageOptions.Journal"/> off) for none.</param>
    public UsageRecorder(LockNDatabase database, UsageOptions options, string node, TimeProvider time, ILogger<UsageRecorder> logger, string? journalDirectory = null)
    {
        this.database = database;
        this.options = options;
        this.time = time;
        this.logger = logger;
        Node = node;
        queue = Channel.CreateBounded<JournalEntry>(new BoundedChannelOptions(options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
        if (journalDirectory is not null && options.Journal)
        {
            journal = new UsageJournal(journalDirectory, time, logger);
        }
    }

    /// <summary>This node's name in the ledger.</summary>
    public string Node { get; }

    /// <summary>Records refused because the queue was full or closed.</summary>
    public long Dropped => Interlocked.Read(ref dropped);

    /// <summary>Records the database refused after every retry, or left behind when the host stopped waiting.</summary>
    public long Lost => Interlocked.Read(ref lost);

    /// <summary>Records written to the database.</summary>
    public long Written => Interlocked.Read(ref written);

    /// <summary>Records of an earlier run's journal that were not in the database and are now (counted in <see cref="Written"/> too).</summary>
    public long Replayed => Interlocked.Read(ref replayed);

    /// <summary>The journal, when it is on.</summary>
    public UsageJournal? Journal => journal;

    /// <summary>Records waiting to be written.</summary>
    public int Queued => queue.Reader.Count;

    /// <summary>Queues a record for the ledger without waiting; false (and counted) when the queue is full or closed.</summary>
    public bool TryRecord(UsageRecord record)
    {
        record.JournalId ??= Guid.CreateVersion7(time.GetUtcNow());
        if (journal is null ? queue.Writer.TryWrite(new JournalEntry(record, null)) : journal.TryAppend(record, queue.Writer))
        {
            return true;
        }

        var total = Interlocked.Increment(ref dropped);
        var now = time.GetTimestamp();
        var due = Interlocked.Read(ref nextDropWarning);
        var next = now + (long)(DropWarningInterval.TotalSeconds * time.TimestampFrequency);
        if (now >= due && Interlocked.CompareExchange(ref nextDropWarning, next, due) == due)
        {
            LogDropped(logger, options.QueueCapacity, total);
        }

        return false;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        new Thread(WriteAll) { IsBackground = true, Name = "LockN usage writer" }.Start();
        started = true;
        if (journal is not null && options.JournalFsyncIntervalMilliseconds > 0)
        {
            var interval = TimeSpan.FromMilliseconds(options.JournalFsyncIntervalMilliseconds);
            syncTimer = time.CreateTimer(_ => SyncJournal(), null, interval, interval);
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        queue.Writer.TryComplete();
        await stopping.CancelAsync();
        if (syncTimer is not null)
        {
            await syncTimer.DisposeAsync();
        }

        if (!started)
        {
            journal?.Dispose();
            return;
        }

        try
        {
            await finished.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            await abandon.CancelAsync();
            LogAbandoned(logger, queue.Reader.Count, journal is null ? "lost" : "kept in the usage journal for the next start");
        }

        // What is still in it (abandoned records) is forced to disk before the process goes.
        journal?.Sync();
        journal?.Dispose();
    }

    /// <summary>A recorder disposed without a graceful stop gives up its queue.</summary>
    public void Dispose()
    {
        queue.Writer.TryComplete();
        stopping.Cancel();
        abandon.Cancel();
        syncTimer?.Dispose();
        journal?.Dispose();
    }

    // Timer callbacks may overlap when the disk is slower than the interval; one fsync round at a time.
    private void SyncJournal()
    {
        if (Interlocked.Exchange(ref syncing, 1) == 0)
        {
            try
            {
                journal?.Sync();
            }
            finally
            {
                Volatile.Write(ref syncing, 0);
            }
        }
    }

    // On a thread of its own, synchronously: SQLite waits for a locked database by blocking its caller (async
    // included), and a pool thread blocked for seconds would make the requests wait after all.
    private void WriteAll()
    {
        var batch = new List<JournalEntry>(Math.Min(options.BatchSize, 4096));
        try
        {
            Replay();
            while (WaitToRead(abandon.Token))
            {
                Fill(batch);
                if (!Write([.. batch.Select(e => e.Record)], replay: false))
                {
                    Interlocked.Add(ref lost, batch.Count);
                }

                journal?.Done(batch);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (abandon.IsCancellationRequested)
        {
            // Left behind; those in the journal are written at the next start.
            var left = batch.Count(e => e.Segment is null);
            while (queue.Reader.TryRead(out var entry))
            {
                left += entry.Segment is null ? 1 : 0;
            }

            Interlocked.Add(ref lost, left);
        }
        finally
        {
            finished.TrySetResult();
        }
    }

    /// <summary>Blocks until a record is queued (true) or the queue is closed and empty (false).</summary>
    private bool WaitToRead(CancellationToken cancellationToken)
    {
        var waiting = queue.Reader.WaitToReadAsync(cancellationToken);
        return waiting.IsCompletedSuccessfully ? waiting.Result : waiting.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Writes the records an earlier run left in the journal, each at most once; a segment is deleted once it is all in.</summary>
    private void Replay()
    {
        foreach (var path in journal?.Leftovers ?? [])
        {
            List<UsageRecord> records;
            int unreadable;
            try
            {
                records = UsageJournal.Read(path, out unreadable);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                LogReplayUnreadable(logger, path, ex.Message);
                continue;
            }

            if (unreadable > 0)
            {
                LogUnreadable(logger, unreadable, path);
            }

            var complete = true;
            foreach (var chunk in records.Chunk(options.BatchSize))
            {
                complete &= Write([.. chunk], replay: true);
            }

            if (complete)
            {
                try
                {
                    File.Delete(path);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    LogReplayUnreadable(logger, path, ex.Message); // replayed again, and skipped, at the next start
                }
            }
            else
            {
                LogReplayKept(logger, path);
            }
        }

        if (Replayed > 0)
        {
            LogReplayed(logger, Replayed, journal!.Directory);
        }
    }

    /// <summary>Takes records until the batch is full or the flush interval has passed (at once when stopping).</summary>
    private void Fill(List<JournalEntry> batch)
    {
        var started = time.GetTimestamp();
        var interval = TimeSpan.FromMilliseconds(options.FlushIntervalMilliseconds);
        while (true)
        {
            while (batch.Count < options.BatchSize && queue.Reader.TryRead(out var record))
            {
                batch.Add(record);
            }

            var remaining = interval - time.GetElapsedTime(started);
            if (batch.Count >= options.BatchSize || stopping.IsCancellationRequested || remaining <= TimeSpan.Zero)
            {
                return;
            }

            using var flushDue = new CancellationTokenSource(remaining, time);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token, flushDue.Token);
            try
            {
                if (!WaitToRead(wait.Token))
                {
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One SaveChanges of the batch, retried; false when the database refused it every time. A replay skips the records already in.</summary>
    private bool Write(List<UsageRecord> batch, bool replay)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var db = database.Open();
                var fresh = replay ? NotInLedger(db, batch) : batch;
                db.Usage.AddRange(fresh);
                db.SaveChanges();
                Interlocked.Add(ref written, fresh.Count);
                if (replay)
                {
                    Interlocked.Add(ref replayed, fresh.Count);
                }

                return true;
            }
            catch (Exception ex)
            {
                // A new unit of work on the next try must insert these again, not think them saved.
                foreach (var record in batch)
                {
                    record.Id = 0;
                }

                if (attempt >= options.WriteRetries)
                {
                    LogBatchLost(logger, batch.Count, attempt + 1, database.Description, ex);
                    return false;
                }

                var delay = FirstRetryDelay * Math.Pow(2, attempt);
                LogBatchRetry(logger, batch.Count, database.Description, delay.TotalSeconds, ex.Message);
                Task.Delay(delay, time, abandon.Token).GetAwaiter().GetResult(); // throws when the host stops waiting
            }
        }
    }

    private static List<UsageRecord> NotInLedger(LockNDb db, List<UsageRecord> batch)
    {
        var known = new HashSet<Guid>();
        foreach (var ids in batch.Select(r => r.JournalId).Chunk(1000))
        {
            known.UnionWith(db.Usage.Where(u => ids.Contains(u.JournalId)).Select(u => u.JournalId!.Value));
        }

        return [.. batch.Where(r => !known.Contains(r.JournalId!.Value))];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} usage records an earlier run left in {Journal} are now in the ledger")]
    private static partial void LogReplayed(ILogger logger, long count, string journal);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} lines of usage journal {Path} are not whole records (cut by a power loss?) and were skipped")]
    private static partial void LogUnreadable(ILogger logger, int count, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "Usage journal {Path} could not be read or deleted: {Message}")]
    private static partial void LogReplayUnreadable(ILogger logger, string path, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "Usage journal {Path} could not be written to the ledger; it is kept for the next start")]
    private static partial void LogReplayKept(ILogger logger, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage ledger queue is full ({Capacity}) or closed; {Dropped} records dropped so far")]
    private static partial void LogDropped(ILogger logger, int capacity, long dropped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Writing {Count} usage records to {Database} failed, retrying in {DelaySeconds} s: {Message}")]
    private static partial void LogBatchRetry(ILogger logger, int count, string database, double delaySeconds, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} usage records lost: {Database} refused them {Attempts} times")]
    private static partial void LogBatchLost(ILogger logger, int count, int attempts, string database, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Shutdown did not wait for the usage ledger: {Count} queued records not written ({Fate})")]
    private static partial void LogAbandoned(ILogger logger, long count, string fate);
}
