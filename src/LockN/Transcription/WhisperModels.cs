using LockN.Models;
using LockN.Scheduling;
using LockN.Transcription.Workers;
using Microsoft.Extensions.Options;

namespace LockN.Transcription;

/// <summary>
/// The Whisper models this server can serve: found on disk at start-up, loaded on first use, the default one
/// loaded (or pulled) at start-up. <c>whisper-1</c> resolves to the default so OpenAI clients work unchanged.
/// </summary>
internal sealed partial class WhisperModels : IHostedService, IAsyncDisposable
{
    private readonly TranscriptionOptions options;
    private readonly ModelDirectories directories;
    private readonly WorkerLauncher launcher = new();
    private readonly ILogger<WhisperModels> logger;
    private readonly DefaultModelSupplier supplier;
    private readonly SlotSchedulers schedulers;
    private readonly CoreShares coreShares;
    private readonly Lock gate = new();
    private readonly CancellationTokenSource stopping = new();
    private Dictionary<string, WhisperModelHost> hosts = new(StringComparer.OrdinalIgnoreCase);
    private Task? supplying;

    public WhisperModels(IOptions<TranscriptionOptions> options, ModelDirectories directories, DefaultModelSupplier supplier, SlotSchedulers schedulers, CoreShares coreShares, ILogger<WhisperModels> logger)
    {
        this.options = options.Value;
        this.directories = directories;
        this.supplier = supplier;
        this.schedulers = schedulers;
        this.coreShares = coreShares;
        this.logger = logger;
        Rescan();
    }

    public string DefaultModelId => options.DefaultModel;

    public IReadOnlyCollection<WhisperModelHost> All
    {
        get
        {
            lock (gate)
            {
                return [.. hosts.Values];
            }
        }
    }

    /// <summary>Why the default model is not serving, in one line; null when it is.</summary>
    public string? DefaultModelProblem { get; private set; }

    public WhisperModelHost? Default => Resolve(options.DefaultModel);

    public WhisperModelHost? Resolve(string modelId)
    {
        if (modelId.Equals(WhisperModelCatalog.OpenAiAlias, StringComparison.OrdinalIgnoreCase))
        {
            modelId = options.DefaultModel;
        }

        lock (gate)
        {
            return hosts.GetValueOrDefault(modelId);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Loading (or downloading) runs in the background: the server answers /health/live at once and
        // /health/ready turns 200 when the default model can serve.
        supplying = Task.Run(SupplyDefaultModelAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task SupplyDefaultModelAsync()
    {
        if (Default is null)
        {
            DefaultModelProblem = await supplier.TrySupplyAsync(options.DefaultModel, directories, options.PullDefaultModel, stopping.Token);
            if (stopping.IsCancellationRequested)
            {
                return;
            }

            Rescan();
        }

        if (Default is not { } host)
        {
            DefaultModelProblem ??= $"Default model {options.DefaultModel} was not found in {directories}.";
            LogDefaultMissing(logger, DefaultModelProblem);
            return;
        }

        if (host.Model.IsTestWeights)
        {
            LogTestWeights(logger, host.Model.Id, host.Model.Path);
        }

        try
        {
            await host.EnsureStartedAsync();
            DefaultModelProblem = null;
        }
        catch (Exception ex)
        {
            DefaultModelProblem = $"Default model {host.Model.Id} failed to load from {host.Model.Path}: {ex.Message}";
            LogDefaultMissing(logger, DefaultModelProblem);
        }
    }

    /// <summary>
    /// Finds the model files on disk: at start-up, and once more after the default model was pulled. Files added
    /// later are seen at the next start.
    /// </summary>
    private void Rescan()
    {
        lock (gate)
        {
            var next = new Dictionary<string, WhisperModelHost>(hosts, StringComparer.OrdinalIgnoreCase);
            foreach (var model in WhisperModelCatalog.Scan(directories))
            {
                if (!next.ContainsKey(model.Id))
                {
                    next[model.Id] = new WhisperModelHost(model, options, launcher, schedulers, coreShares, logger);
                }
            }

            hosts = next;
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await stopping.CancelAsync();
        if (supplying is not null)
        {
            await supplying.WaitAsync(cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    public async ValueTask DisposeAsync()
    {
        stopping.Dispose();
        foreach (var host in All)
        {
            await host.DisposeAsync();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "{Problem}")]
    private static partial void LogDefaultMissing(ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {ModelId} is served from test weights ({Path}): transcripts will be meaningless. Run `lockn models pull` for real weights.")]
    private static partial void LogTestWeights(ILogger logger, string modelId, string path);
}
