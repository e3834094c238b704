using System.Runtime.CompilerServices;
using LockN.Audio;
using LockN.Scheduling;
using LockN.Transcription.Workers;

namespace LockN.Transcription;

internal enum ModelState
{
    NotLoaded,
    Loading,
    Ready,

    /// <summary>Loaded, but with fewer warm workers than configured: a replacement is loading.</summary>
    Degraded,
    Failed,
}

/// <summary>One Whisper model being served: its slots and wait queue, and the warm worker processes behind them.</summary>
internal sealed partial class WhisperModelHost : IAsyncDisposable
{
    private readonly WhisperWorkerPool pool;
    private readonly TimeSpan cancelGrace;
    private readonly CoreShares coreShares;
    private readonly int threads;
    private readonly ILogger logger;
    private readonly Lock startGate = new();
    private Task? starting;

    public WhisperModelHost(WhisperModelFile model, TranscriptionOptions options, WorkerLauncher launcher, SlotSchedulers schedulers, CoreShares coreShares, ILogger logger)
    {
        Model = model;
        Scheduler = schedulers.Create(ModelKind.Transcription, model.Id, options.Slots, options.QueueLength, TimeSpan.FromSeconds(options.QueueTimeoutSeconds));
        pool = new WhisperWorkerPool(model, WorkerSettings.From(options), 1 + options.SpareWorkers, launcher, logger);
        cancelGrace = TimeSpan.FromMilliseconds(options.CancelGraceMilliseconds);
        this.coreShares = coreShares;
        threads = options.EffectiveThreads;
        this.logger = logger;
    }

    public WhisperModelFile Model { get; }
    public SlotScheduler Scheduler { get; }
    public int LiveWorkers => pool.Live;

    /// <summary>Worker processes the model is configured to keep warm: one, plus the spares.</summary>
    public int WantedWorkers => pool.Size;
    public WhisperRuntimeInfo? Runtime => pool.Runtime;

    public ModelState State => starting switch
    {
        null => ModelState.NotLoaded,
        { IsCompletedSuccessfully: true } => LiveWorkers < WantedWorkers ? ModelState.Degraded : ModelState.Ready,
        { IsCompleted: true } => ModelState.Failed,
        _ => ModelState.Loading,
    };

    /// <summary>Whether a request would find a warm worker now rather than wait for one to load.</summary>
    public bool CanServeNow => State is ModelState.Ready || (State is ModelState.Degraded && LiveWorkers > 0);

    /// <summary>Why the model is degraded, in words for an operator; null when it is not.</summary>
    public string? DegradedReason => State is not ModelState.Degraded ? null
        : LiveWorkers == 0 ? $"No warm worker for {Model.Id}: a replacement is loading and requests wait for it."
        : $"{LiveWorkers} of {WantedWorkers} workers of {Model.Id} warm: a replacement is loading; until it is, a killed worker's slot waits for a load.";

    public string? LastError => starting is { IsFaulted: true } failed ? failed.Exception.GetBaseException().Message : pool.LastError;

    /// <summary>Loads the model once; later calls wait for the same load. A failed load is retried by the next call.</summary>
    public Task EnsureStartedAsync()
    {
        lock (startGate)
        {
            if (starting is null or { IsFaulted: true })
            {
                starting = pool.StartAsync(CancellationToken.None);
            }

            return starting;
        }
    }

    /// <summary>
    /// Transcribes on a worker lane. The caller holds a slot lease for the whole enumeration. A job whose worker was
    /// killed under it for another lane's sake (a job that would not stop) is run again once on a live worker, when
    /// it had produced nothing yet: a request is never failed for something another client did.
    /// </summary>
    public async IAsyncEnumerable<TranscriptSegment> RunAsync(DecodedSamples samples, WhisperJob job, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await EnsureStartedAsync().WaitAsync(cancellationToken);
        for (var attempt = 0; ; attempt++)
        {
            var lane = await pool.RentAsync(cancellationToken);
            using var computing = coreShares.Enter(Model.Id);
            var shared = job with { Threads = coreShares.ThreadsFor(Model.Id, threads) };
            var processId = lane.Worker.ProcessId; // for the log: the process object is disposed once the worker is retired
            var produced = false;
            var again = false;
            try
            {
                await using var segments = lane.Worker.RunAsync(lane.Lane, samples, shared, cancelGrace, cancellationToken).GetAsyncEnumerator(cancellationToken);
                while (true)
                {
                    try
                    {
                        if (!await segments.MoveNextAsync())
                        {
                            break;
                        }
                    }
                    catch (WorkerFailedException) when (attempt == 0 && !produced && !cancellationToken.IsCancellationRequested && lane.Worker.WasKilled)
                    {
                        again = true;
                        break;
                    }

                    produced = true;
                    yield return segments.Current;
                }
            }
            finally
            {
                pool.Return(lane);
            }

            if (!again)
            {
                yield break;
            }

            LogRunAgain(logger, Model.Id, processId);
        }
    }

    public ValueTask DisposeAsync() => pool.DisposeAsync();

    [LoggerMessage(Level = LogLevel.Information, Message = "A {ModelId} job was on worker {ProcessId} when it was killed to stop another; running it again")]
    private static partial void LogRunAgain(ILogger logger, string modelId, int processId);
}
