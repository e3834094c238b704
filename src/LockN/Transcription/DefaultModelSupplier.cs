using LockN.Models;
using Microsoft.Extensions.Options;

namespace LockN.Transcription;

/// <summary>Gets the default model onto disk when it is missing: pulls it where there is a network, else says how to supply it.</summary>
internal sealed partial class DefaultModelSupplier(IOptions<ModelDownloadOptions> options, ILogger<DefaultModelSupplier> logger)
{
    private const long UnknownSizeLogBytes = 16 * 1024 * 1024;

    /// <summary>Returns null when the model is now on disk, else one line saying how to supply it (and why the pull failed).</summary>
    public async Task<string?> TrySupplyAsync(string modelId, ModelDirectories directories, bool pull, CancellationToken cancellationToken)
    {
        var hint = ModelDownloader.OfflineHint(modelId, directories);
        if (!pull || KnownWhisperModels.Find(modelId) is not { } model)
        {
            return hint;
        }

        if (!ModelDownloader.TryResolveUrl(options.Value.BaseUrl, model, out var url))
        {
            return $"{hint} Pull failed: {ModelDownloadOptions.Section}:BaseUrl is not an http(s) URL.";
        }

        var source = ModelDownloader.Redact(url);
        LogPulling(logger, model.ModelId, source, directories.PullTarget);
        using var downloader = new ModelDownloader(options.Value.Timeout);
        try
        {
            var result = await downloader.DownloadAsync(model, url, directories.PullTarget, new ProgressLog(logger, model.ModelId), cancellationToken);
            if (!result.Succeeded)
            {
                return $"{hint} Pull failed: {result.Message!.TrimEnd('.')}.";
            }

            LogPulled(logger, model.ModelId, result.Path!, result.Bytes);
            return null;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return $"{hint} Pull cancelled.";
        }
    }

    /// <summary>Logs every 10 % (or every 16 MiB when the size is unknown): enough to see it move, not a flood.</summary>
    private sealed class ProgressLog(ILogger logger, string modelId) : IProgress<ModelDownloadProgress>
    {
        private long nextStep = 1;

        public void Report(ModelDownloadProgress value)
        {
            var step = value.Fraction is { } fraction ? (long)(fraction * 10) : value.BytesDone / UnknownSizeLogBytes;
            if (step < nextStep)
            {
                return;
            }

            nextStep = step + 1;
            LogProgress(logger, modelId, value.BytesDone / (1024 * 1024), value.TotalBytes is { } total ? $"{total / (1024 * 1024)} MiB" : "unknown size",
                value.Fraction is { } done ? $"{done:P0}" : "?");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Default model {ModelId} is missing; pulling {Url} into {Directory}")]
    private static partial void LogPulling(ILogger logger, string modelId, string url, string directory);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pulling {ModelId}: {DoneMiB} MiB of {Total} ({Percent})")]
    private static partial void LogProgress(ILogger logger, string modelId, long doneMiB, string total, string percent);

    [LoggerMessage(Level = LogLevel.Information, Message = "Pulled {ModelId} into {Path} ({Bytes} bytes, SHA-1 verified)")]
    private static partial void LogPulled(ILogger logger, string modelId, string path, long bytes);
}
