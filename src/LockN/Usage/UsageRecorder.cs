using System.Threading.Channels;
using LockN.Storage;

namespace LockN.Usage;

/// <summary>
/// The usage ledger's writer. Requests hand their record to a bounded queue and never wait: a full queue drops the
/// record and counts it. One writer thread takes the queue in batches (one SaveChanges each), retrying a batch the
/// database refused; a graceful stop closes the queue and writes everything in it before returning.
/// </summary>
internal sealed partial class UsageRecorder : IHostedService, IDisposable
{
    private static readonly TimeSpan DropWarningInterval = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(500);

    private readonly Channel<UsageRecord> queue;
    private readonly LockNDatabase database;
    private readonly UsageOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;

    // Cancelled when the host stops: the writer no longer waits for a batch to fill.
    private readonly CancellationTokenSource stopping = new();

    // Cancelled when the host stops waiting for us: the writer gives up what is left.
    private readonly CancellationTokenSource abandon = new();

    private readonly TaskCompletionSource finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool started;
    private long dropped;
    private long lost;
    private long written;
    private long nextDropWarning;

    public UsageRecorder(LockNDatabase database, UsageOptions options, string node, TimeProvider time, ILogger<UsageRecorder> logger)
    {
        this.database = database;
        this.options = options;
        this.time = time;
        this.logger = logger;
        Node = node;
        queue = Channel.CreateBounded<UsageRecord>(new BoundedChannelOptions(options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
    }

    /// <summary>This node's name in the ledger.</summary>
    public string Node { get; }

    /// <summary>Records refused because the queue was full or closed.</summary>
    public long Dropped => Interlocked.Read(ref dropped);

    /// <summary>Records the database refused after every retry, or left behind when the host stopped waiting.</summary>
    public long Lost => Interlocked.Read(ref lost);

    /// <summary>Records written to the database.</summary>
    public long Written => Interlocked.Read(ref written);

    /// <summary>Records waiting to be written.</summary>
    public int Queued => queue.Reader.Count;

    /// <summary>Queues a record for the ledger without waiting; false (and counted) when the queue is full or closed.</summary>
    public bool TryRecord(UsageRecord record)
    {
        if (queue.Writer.TryWrite(record))
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
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        queue.Writer.TryComplete();
        await stopping.CancelAsync();
        if (!started)
        {
            return;
        }

        try
        {
            await finished.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            await abandon.CancelAsync();
            LogAbandoned(logger, queue.Reader.Count);
        }
    }

    /// <summary>A recorder disposed without a graceful stop gives up its queue.</summary>
    public void Dispose()
    {
        queue.Writer.TryComplete();
        stopping.Cancel();
        abandon.Cancel();
    }

    // On a thread of its own, synchronously: SQLite waits for a locked database by blocking its caller (async
    // included), and a pool thread blocked for seconds would make the requests wait after all.
    private void WriteAll()
    {
        var batch = new List<UsageRecord>(Math.Min(options.BatchSize, 4096));
        try
        {
            while (WaitToRead(abandon.Token))
            {
                Fill(batch);
                Write(batch);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (abandon.IsCancellationRequested)
        {
            var left = batch.Count;
            while (queue.Reader.TryRead(out _))
            {
                left++;
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

    /// <summary>Takes records until the batch is full or the flush interval has passed (at once when stopping).</summary>
    private void Fill(List<UsageRecord> batch)
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

    private void Write(List<UsageRecord> batch)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var db = database.Open();
                db.Usage.AddRange(batch);
                db.SaveChanges();
                Interlocked.Add(ref written, batch.Count);
                return;
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
                    Interlocked.Add(ref lost, batch.Count);
                    LogBatchLost(logger, batch.Count, attempt + 1, database.Description, ex);
                    return;
                }

                var delay = FirstRetryDelay * Math.Pow(2, attempt);
                LogBatchRetry(logger, batch.Count, database.Description, delay.TotalSeconds, ex.Message);
                Task.Delay(delay, time, abandon.Token).GetAwaiter().GetResult(); // throws when the host stops waiting
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Usage ledger queue is full ({Capacity}) or closed; {Dropped} records dropped so far")]
    private static partial void LogDropped(ILogger logger, int capacity, long dropped);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Writing {Count} usage records to {Database} failed, retrying in {DelaySeconds} s: {Message}")]
    private static partial void LogBatchRetry(ILogger logger, int count, string database, double delaySeconds, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Count} usage records lost: {Database} refused them {Attempts} times")]
    private static partial void LogBatchLost(ILogger logger, int count, int attempts, string database, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Shutdown did not wait for the usage ledger: {Count} queued records not written")]
    private static partial void LogAbandoned(ILogger logger, long count);
}
