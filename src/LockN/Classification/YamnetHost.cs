using LockN.Models;
using LockN.Scheduling;
using LockN.Transcription;
using Microsoft.Extensions.Options;

namespace LockN.Classification;

/// <summary>
/// The YAMNet model of this server: found in the model directories, loaded in the background at start-up, and
/// guarded by its own slots and bounded queue like every model.
/// </summary>
internal sealed partial class YamnetHost : IHostedService, IDisposable
{
    private readonly ClassificationOptions options;
    private readonly ILogger<YamnetHost> logger;
    private readonly Lazy<Task<YamnetModel>> loading;

    public YamnetHost(IOptions<ClassificationOptions> options, ModelDirectories directories, SlotSchedulers schedulers, ILogger<YamnetHost> logger)
    {
        this.options = options.Value;
        this.logger = logger;
        ModelPath = directories.Find(this.options.ModelFile);
        GenericLabels = new HashSet<string>(this.options.GenericLabels, StringComparer.OrdinalIgnoreCase);
        Scheduler = schedulers.Create(ModelKind.Classification, YamnetModel.Id, this.options.Slots, this.options.QueueLength, TimeSpan.FromSeconds(this.options.QueueTimeoutSeconds));
        loading = new Lazy<Task<YamnetModel>>(() => Task.Run(Load));
    }

    /// <summary>Null when no model file was found: the model is then not offered.</summary>
    public string? ModelPath { get; }

    public bool IsAvailable => ModelPath is not null;

    public SlotScheduler Scheduler { get; }

    public ISet<string> GenericLabels { get; }

    public ModelState State => !IsAvailable || !loading.IsValueCreated ? ModelState.NotLoaded
        : !loading.Value.IsCompleted ? ModelState.Loading
        : loading.Value.IsCompletedSuccessfully ? ModelState.Ready : ModelState.Failed;

    public string? LastError => loading.IsValueCreated && loading.Value.IsFaulted ? loading.Value.Exception!.GetBaseException().Message : null;

    public Task<YamnetModel> GetModelAsync() => loading.Value;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (IsAvailable)
        {
            _ = loading.Value.ContinueWith(t => LogLoadFailed(logger, ModelPath!, t.Exception!.GetBaseException().Message), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }

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

    private YamnetModel Load()
    {
        var model = new YamnetModel(ModelPath!, options.EffectiveThreads, options.MaxWindowsPerRun);
        LogLoaded(logger, ModelPath!, model.Classes.Count);
        return model;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "YAMNet loaded from {Path} ({Classes} classes)")]
    private static partial void LogLoaded(ILogger logger, string path, int classes);

    [LoggerMessage(Level = LogLevel.Error, Message = "YAMNet could not be loaded from {Path}: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string path, string reason);
}
