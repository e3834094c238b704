using System.Threading.Channels;

namespace LockN.Transcription.Workers;

/// <summary>
/// Keeps a model's worker processes warm: one per slot plus spares, so that when a worker is killed to free its
/// slot at once, the next request finds a loaded worker instead of waiting for a model to load.
/// </summary>
internal sealed partial class WhisperWorkerPool : IAsyncDisposable
{
    private readonly WhisperModelFile model;
    private readonly int threads;
    private readonly int size;
    private readonly bool warmUp;
    private readonly WorkerLauncher launcher;
    private readonly ILogger logger;
    private readonly Channel<WhisperWorker> idle = Channel.CreateUnbounded<WhisperWorker>();
    private readonly CancellationTokenSource stopping = new();
    private readonly List<Task> starters = [];
    // A replacement waits for the model to be idle this long, unless a request is waiting for a worker.
    private static readonly TimeSpan QuietPeriod = TimeSpan.FromSeconds(1);

    private int live;
    private int rented;
    private long lastReturnedAt;
    private int waitingRenters;
    private int disposed;

    public WhisperWorkerPool(WhisperModelFile model, int threads, int size, bool warmUp, WorkerLauncher launcher, ILogger logger)
    {
        this.model = model;
        this.threads = threads;
        this.size = size;
        this.warmUp = warmUp;
        this.launcher = launcher;
        this.logger = logger;
    }

    /// <summary>Workers alive (idle or busy).</summary>
    public int Live => Volatile.Read(ref live);

    public string? LastError { get; private set; }

    /// <summary>
    /// Starts every worker, one after the other, and returns when all are warm: starting them side by side would
    /// make each load slower, and a model that reports ready should serve at full speed.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < size; i++)
        {
            var worker = await WhisperWorker.StartAsync(launcher, model, threads, warmUp, logger, cancellationToken);
            Interlocked.Increment(ref live);
            idle.Writer.TryWrite(worker);
        }
    }

    public async ValueTask<WhisperWorker> RentAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            WhisperWorker worker;
            if (!idle.Reader.TryRead(out worker!))
            {
                Interlocked.Increment(ref waitingRenters);
                try
                {
                    worker = await idle.Reader.ReadAsync(cancellationToken);
                }
                finally
                {
                    Interlocked.Decrement(ref waitingRenters);
                }
            }

            if (worker.IsUsable)
            {
                Interlocked.Increment(ref rented);
                return worker;
            }

            Retire(worker); // died while idle
        }
    }

    public void Return(WhisperWorker worker)
    {
        Volatile.Write(ref lastReturnedAt, TimeProvider.System.GetTimestamp());
        Interlocked.Decrement(ref rented);
        if (worker.IsUsable && !stopping.IsCancellationRequested)
        {
            idle.Writer.TryWrite(worker);
        }
        else
        {
            Retire(worker);
        }
    }

    private void Retire(WhisperWorker worker)
    {
        Interlocked.Decrement(ref live);
        _ = worker.DisposeAsync().AsTask();
        if (!stopping.IsCancellationRequested)
        {
            StartReplacement();
        }
    }

    private void StartReplacement()
    {
        lock (starters)
        {
            starters.RemoveAll(t => t.IsCompleted);
            starters.Add(Task.Run(ReplaceAsync));
        }
    }

    private async Task ReplaceAsync()
    {
        var delay = TimeSpan.FromSeconds(1);
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                // Loading and warming a worker takes whole cores for a second or more: done next to running
                // requests it slows them down. Wait for a quiet second, unless a request is waiting for a worker.
                while (Volatile.Read(ref waitingRenters) == 0 &&
                       (Volatile.Read(ref rented) > 0 || TimeProvider.System.GetElapsedTime(Volatile.Read(ref lastReturnedAt)) < QuietPeriod))
                {
                    await Task.Delay(50, stopping.Token);
                }

                var worker = await WhisperWorker.StartAsync(launcher, model, threads, warmUp, logger, stopping.Token);
                Interlocked.Increment(ref live);
                idle.Writer.TryWrite(worker);
                LastError = null;
                return;
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LastError = ex.Message;
                LogStartFailed(logger, model.Id, delay.TotalSeconds, ex.Message);
                await Task.Delay(delay, stopping.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                delay = TimeSpan.FromSeconds(Math.Min(delay.TotalSeconds * 2, 30));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The host and the registry may both dispose a pool; the second call has nothing left to do.
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        await stopping.CancelAsync();
        Task[] pending;
        lock (starters)
        {
            pending = [.. starters];
        }

        await Task.WhenAll(pending);
        idle.Writer.TryComplete();
        await foreach (var worker in idle.Reader.ReadAllAsync())
        {
            await worker.DisposeAsync();
        }

        // The token source is left undisposed: late Return/Retire calls still read it, and it holds no timer.
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not start a worker for {ModelId}; retrying in {Seconds} s: {Message}")]
    private static partial void LogStartFailed(ILogger logger, string modelId, double seconds, string message);
}
