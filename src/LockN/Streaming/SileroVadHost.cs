namespace LockN.Streaming;

/// <summary>Loads Silero VAD once, in the background, from the model directories.</summary>
internal sealed partial class SileroVadHost : IHostedService, IDisposable
{
    private readonly ILogger<SileroVadHost> logger;
    private readonly Lazy<Task<SileroVadModel>> loading;

    public SileroVadHost(Microsoft.Extensions.Options.IOptions<StreamingOptions> options, Models.ModelDirectories directories, ILogger<SileroVadHost> logger)
    {
        this.logger = logger;
        ModelPath = directories.Find(options.Value.VadModelFile);
        loading = new Lazy<Task<SileroVadModel>>(() => Task.Run(() => new SileroVadModel(ModelPath!)));
    }

    /// <summary>Null when no model file was found: streams then only commit by hand.</summary>
    public string? ModelPath { get; }

    public bool IsAvailable => ModelPath is not null;

    public Task<SileroVadModel> GetModelAsync() => loading.Value;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!IsAvailable)
        {
            LogMissing(logger);
            return Task.CompletedTask;
        }

        _ = loading.Value.ContinueWith(t => LogLoadFailed(logger, ModelPath!, t.Exception!.GetBaseException().Message), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        if (loading.IsValueCreated && loading.Value.IsCompletedSuccessfully)
        {
            loading.Value.Result.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silero VAD (silero_vad.onnx) is not under the model directories: streams have no voice detection and finalise utterances only on commit")]
    private static partial void LogMissing(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Silero VAD could not be loaded from {Path}: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string path, string reason);
}
