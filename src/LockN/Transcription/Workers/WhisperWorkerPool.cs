using System.Threading.Channels;

namespace LockN.Transcription.Workers;

/// <summary>A lane of a worker process rented for one job.</summary>
internal readonly record struct WorkerLane(WhisperWorker Worker, int Lane);

/// <summary>
/// Keeps a model's worker processes warm: one process that serves all the model's slots (a lane each, on one loaded
/// model), plus configured spares. Lanes are taken from the oldest live worker, so a spare stays idle (and small)
/// until the worker before it is killed to free a slot at once or crashes; then its lanes serve at once while a
/// replacement loads.
/// </summary>
internal sealed partial class WhisperWorkerPool : IAsyncDisposable
{
    private readonly WhisperModelFile model;
    private readonly WorkerSettings settings;
    private readonly int size;
    private readonly WorkerLauncher launcher;
    private readonly ILogger logger;
    private readonly List<WhisperWorker> workers = [];
    // Wakes renters waiting for a lane; written only while someone waits, so it never grows unread for long.
    private readonly Channel<bool> laneFreed = Channel.CreateUnbounded<bool>();
    private readonly CancellationTokenSource stopping = new();
    private readonly List<Task> starters = [];
    // A replacement waits for the model to be idle this long, unless a request is waiting for a worker.
    private static readonly TimeSpan QuietPeriod = TimeSpan.FromSeconds(1);

    private int rented;
    private long lastReturnedAt;
    private int waitingRenters;
    private int disposed;

    /// <param name="size">Worker processes: one, plus the spares.</param>
    public WhisperWorkerPool(WhisperModelFile model, WorkerSettings settings, int size, WorkerLauncher launcher, ILogger logger)
    {
        this.model = model;
        this.settings = settings;
        this.size = size;
        this.launcher = launcher;
        this.logger = logger;
    }

    /// <summary>Worker processes alive (idle or busy).</summary>
    public int Live
    {
        get
        {
            lock (workers)
            {
                return workers.Count(w => w.IsUsable);
            }
        }
    }

    /// <summary>Worker processes the pool keeps: one, plus the spares.</summary>
    public int Size => size;

    public string? LastError { get; private set; }

    /// <summary>The runtime the workers reported (all of a pool's workers load the same one).</summary>
    public WhisperRuntimeInfo? Runtime { get; private set; }

    /// <summary>
    /// Starts every worker, one after the other, and returns when all are warm: starting them side by side would
    /// make each load slower, and a model that reports ready should serve at full speed.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < size; i++)
        {
            Add(await WhisperWorker.StartAsync(launcher, model, settings, logger, cancellationToken));
        }
    }

    private void Add(WhisperWorker worker)
    {
        Runtime = worker.Runtime;
        lock (workers)
        {
            workers.Add(worker);
        }

        SignalLaneFreed();
    }

    public async ValueTask<WorkerLane> RentAsync(CancellationToken cancellationToken)
    {
        // Counted as waiting before looking, so a lane freed after the look always wakes this renter.
        Interlocked.Increment(ref waitingRenters);
        try
        {
            while (true)
            {
                if (TryTakeLane() is { } lane)
                {
                    Interlocked.Increment(ref rented);
                    return lane;
                }

                await laneFreed.Reader.ReadAsync(cancellationToken);
            }
        }
        finally
        {
            Interlocked.Decrement(ref waitingRenters);
        }
    }

    private WorkerLane? TryTakeLane()
    {
        List<WhisperWorker> dead = [];
        WorkerLane? taken = null;
        lock (workers)
        {
            foreach (var worker in workers)
            {
                if (!worker.IsUsable)
                {
                    dead.Add(worker);
                }
                else if (worker.TryTakeLane(out var lane))
                {
                    taken = new WorkerLane(worker, lane);
                    break;
                }
            }
        }

        dead.ForEach(Retire); // died while idle
        return taken;
    }

    public void Return(WorkerLane lane)
    {
        Volatile.Write(ref lastReturnedAt, TimeProvider.System.GetTimestamp());
        Interlocked.Decrement(ref rented);
        lane.Worker.ReleaseLane(lane.Lane);
        if (!lane.Worker.IsUsable || stopping.IsCancellationRequested)
        {
            Retire(lane.Worker);
        }

        SignalLaneFreed();
    }

    private void SignalLaneFreed()
    {
        if (Volatile.Read(ref waitingRenters) > 0)
        {
            laneFreed.Writer.TryWrite(true);
        }
    }

    /// <summary>Takes a dead worker out (once, whoever notices first) and starts its replacement.</summary>
    private void Retire(WhisperWorker worker)
    {
        if (!worker.TryRetire())
        {
            return;
        }

        lock (workers)
        {
            workers.Remove(worker);
        }

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
                // requests it slows them down. Wait for a quiet second, unless a request is waiting for a lane or
                // no warm spare is left (the next kill would leave requests waiting for a load).
                while (Volatile.Read(ref waitingRenters) == 0 && Live > 1 &&
                       (Volatile.Read(ref rented) > 0 || TimeProvider.System.GetElapsedTime(Volatile.Read(ref lastReturnedAt)) < QuietPeriod))
                {
                    await Task.Delay(50, stopping.Token);
                }

                // Its warm-up job (a whole 30 s window on every thread) runs only on a quiet model: next to a running
                // or waiting request it would slow that request down by more than whisper.cpp's first run costs the
                // request that first lands on the new worker.
                var quiet = Volatile.Read(ref waitingRenters) == 0 && Volatile.Read(ref rented) == 0 &&
                            TimeProvider.System.GetElapsedTime(Volatile.Read(ref lastReturnedAt)) >= QuietPeriod;
                Add(await WhisperWorker.StartAsync(launcher, model, quiet ? settings : settings with { WarmUp = false }, logger, stopping.Token));
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
        WhisperWorker[] remaining;
        lock (workers)
        {
            remaining = [.. workers];
            workers.Clear();
        }

        foreach (var worker in remaining.Where(w => w.TryRetire()))
        {
            await worker.DisposeAsync();
        }

        // The token source is left undisposed: late Return/Retire calls still read it, and it holds no timer.
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not start a worker for {ModelId}; retrying in {Seconds} s: {Message}")]
    private static partial void LogStartFailed(ILogger logger, string modelId, double seconds, string message);
}
