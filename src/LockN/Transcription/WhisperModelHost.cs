using System.Runtime.CompilerServices;
using LockN.Scheduling;
using LockN.Transcription.Workers;

namespace LockN.Transcription;

internal enum ModelState
{
    NotLoaded,
    Loading,
    Ready,
    Failed,
}

/// <summary>One Whisper model being served: its slots and wait queue, and the warm worker processes behind them.</summary>
internal sealed class WhisperModelHost : IAsyncDisposable
{
    private readonly WhisperWorkerPool pool;
    private readonly TimeSpan cancelGrace;
    private readonly Lock startGate = new();
    private Task? starting;

    public WhisperModelHost(WhisperModelFile model, TranscriptionOptions options, WorkerLauncher launcher, SlotSchedulers schedulers, ILogger logger)
    {
        Model = model;
        Scheduler = schedulers.Create(ModelKind.Transcription, model.Id, options.Slots, options.QueueLength, TimeSpan.FromSeconds(options.QueueTimeoutSeconds));
        pool = new WhisperWorkerPool(model, options.EffectiveThreads, options.Slots + options.SpareWorkers, options.WarmUp, launcher, logger);
        cancelGrace = TimeSpan.FromMilliseconds(options.CancelGraceMilliseconds);
    }

    public WhisperModelFile Model { get; }
    public SlotScheduler Scheduler { get; }
    public int LiveWorkers => pool.Live;

    public ModelState State => starting switch
    {
        null => ModelState.NotLoaded,
        { IsCompletedSuccessfully: true } => ModelState.Ready,
        { IsCompleted: true } => ModelState.Failed,
        _ => ModelState.Loading,
    };

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

    /// <summary>Transcribes on a worker. The caller holds a slot lease for the whole enumeration.</summary>
    public async IAsyncEnumerable<TranscriptSegment> RunAsync(ReadOnlyMemory<float> samples, WhisperJob job, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await EnsureStartedAsync().WaitAsync(cancellationToken);
        var worker = await pool.RentAsync(cancellationToken);
        try
        {
            await foreach (var segment in worker.RunAsync(samples, job, cancelGrace, cancellationToken))
            {
                yield return segment;
            }
        }
        finally
        {
            pool.Return(worker);
        }
    }

    public ValueTask DisposeAsync() => pool.DisposeAsync();
}
