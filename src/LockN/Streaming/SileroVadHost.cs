using LockN.Models;
using Microsoft.Extensions.Options;

namespace LockN.Streaming;

/// <summary>Loads Silero VAD once, in the background, from the model directories.</summary>
internal sealed partial class SileroVadHost : IHostedService, IDisposable
{
    private readonly ILogger<SileroVadHost> logger;
    private readonly BackgroundModel<SileroVadModel> model;

    public SileroVadHost(IOptions<StreamingOptions> options, ModelDirectories directories, ILogger<SileroVadHost> logger)
    {
        this.logger = logger;
        model = new BackgroundModel<SileroVadModel>(directories.Find(options.Value.VadModelFile), path => new SileroVadModel(path));
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

        model.StartLoading(reason => LogLoadFailed(logger, ModelPath!, reason));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => model.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Silero VAD (silero_vad.onnx) is not under the model directories: streams have no voice detection and finalise utterances only on commit")]
    private static partial void LogMissing(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "Silero VAD could not be loaded from {Path}: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string path, string reason);
}
