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
    private readonly BackgroundModel<YamnetModel> model;
    private readonly CoreShares coreShares;

    public YamnetHost(IOptions<ClassificationOptions> options, ModelDirectories directories, SlotSchedulers schedulers, CoreShares coreShares, ILogger<YamnetHost> logger)
    {
        this.options = options.Value;
        this.logger = logger;
        this.coreShares = coreShares;
        var path = directories.Find(this.options.ModelFile);
        model = new BackgroundModel<YamnetModel>(path, Load, reason => LogLoadFailed(logger, path!, reason));
        GenericLabels = new HashSet<string>(this.options.GenericLabels, StringComparer.OrdinalIgnoreCase);
        Scheduler = schedulers.Create(ModelKind.Classification, YamnetModel.Id, this.options.Slots, this.options.QueueLength, TimeSpan.FromSeconds(this.options.QueueTimeoutSeconds));
    }

    /// <summary>Null when no model file was found: the model is then not offered.</summary>
    public string? ModelPath => model.Path;

    public bool IsAvailable => model.IsAvailable;

    public SlotScheduler Scheduler { get; }

    public ISet<string> GenericLabels { get; }

    public ModelState State => model.State;

    public string? LastError => model.LastError;

    public Task<YamnetModel> GetModelAsync() => model.GetAsync();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.LoadAtStart)
        {
            model.StartLoading();
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => model.Dispose();

    private YamnetModel Load(string path)
    {
        var loaded = new YamnetModel(path, options.EffectiveThreads, options.MaxWindowsPerRun, options.Slots, options.Priority, coreShares);
        LogLoaded(logger, path, loaded.Classes.Count);
        return loaded;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "YAMNet loaded from {Path} ({Classes} classes)")]
    private static partial void LogLoaded(ILogger logger, string path, int classes);

    [LoggerMessage(Level = LogLevel.Error, Message = "YAMNet could not be loaded from {Path}: {Reason}")]
    private static partial void LogLoadFailed(ILogger logger, string path, string reason);
}
