using LockN.Models;
using Microsoft.Extensions.Options;

namespace LockN.Streaming;

/// <summary>Loads Silero VAD once, from the model directories: when the first stream opens, or at start-up when configured.</summary>
internal sealed partial class SileroVadHost : IHostedService, IDisposable
{
    private readonly ILogger<SileroVadHost> logger;
    private readonly BackgroundModel<SileroVadModel> model;
    private readonly bool loadAtStart;

    public SileroVadHost(IOptions<StreamingOptions> options, ModelDirectories directories, ILogger<SileroVadHost> logger)
    {
        this.logger = logger;
        loadAtStart = options.Value.LoadVadAtStart;
        var path = directories.Find(options.Value.VadModelFile);
        model = new BackgroundModel<SileroVadModel>(path, file => new SileroVadModel(file), reason => LogLoadFailed(logger, path!, reason));
    }

    /// <summary>Null when no model file was found: streams then only commit by hand.</summary>
    public string? ModelPath => model.Path;

    public bool IsAvailable => model.IsAvailable;

    public Task<SileroVadModel> GetModelAsync() => model.GetAsync();

    /// <summary>The model once loaded; null while it loads, failed, or is missing.</summary>
    public SileroVadModel? Loaded => model.Loaded;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!IsAvailable)
        {
            LogMissing(logger);
        }

        if (loadAtStart)
        {
            model.StartLoading();
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => model.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silero VAD (silero_vad.onnx) is not under the model directories: streams have no voice detection and finalise utterances only on commit")]
    private static partial void LogMissing(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Silero VAD could not be loaded from {Path}: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string path, string reason);
}
