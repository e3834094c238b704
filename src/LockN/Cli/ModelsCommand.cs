using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using LockN.Models;
using LockN.Transcription;
using Spectre.Console;

namespace LockN.Cli;

/// <summary>
/// <c>lockn models list</c>: the downloadable models and which are on disk;
/// <c>lockn models pull NAME [--models DIR] [--base-url URL]</c>: downloads one, checks its SHA-1, writes it atomically.
/// </summary>
internal static class ModelsCommand
{
    private static readonly TimeSpan PlainProgressInterval = TimeSpan.FromSeconds(5);

    public static Command Create(IConfiguration configuration) =>
        new("models", "List and download Whisper models") { CreateList(configuration), CreatePull(configuration) };

    private static Option<string?> ModelsOption() =>
        new("--models") { Description = "Model directories, ';'-separated; pull writes into the first (env LOCKN_MODELS)" };

    private static Command CreateList(IConfiguration configuration)
    {
        var models = ModelsOption();
        var command = new Command("list", "List the downloadable models and where each is on disk") { models };
        command.SetAction(parse =>
        {
            var directories = Directories(parse.GetValue(models), configuration);
            var onDisk = WhisperModelCatalog.Scan(directories).ToDictionary(m => m.Id, StringComparer.OrdinalIgnoreCase);
            var width = KnownWhisperModels.All.Max(m => m.Name.Length) + 2;
            Console.Out.WriteLine($"{"NAME".PadRight(width)}{"SIZE",-9}ON DISK");
            foreach (var model in KnownWhisperModels.All)
            {
                var where = onDisk.GetValueOrDefault(model.ModelId) switch
                {
                    null => "-",
                    { IsTestWeights: true } found => $"test weights only ({found.Path})",
                    var found => found.Path,
                };
                Console.Out.WriteLine($"{model.Name.PadRight(width)}{model.SizeHint,-9}{where}");
            }

            Console.Out.WriteLine($"Searched {directories}; `lockn models pull NAME` writes into {directories.PullTarget}.");
            return 0;
        });
        return command;
    }

    private static Command CreatePull(IConfiguration configuration)
    {
        var name = new Argument<string>("name") { Description = $"Model to download: {KnownWhisperModels.Names}" };
        var models = ModelsOption();
        var baseUrl = new Option<string?>("--base-url") { Description = $"Download location (env LOCKN_ModelDownload__BaseUrl; default {KnownWhisperModels.DefaultBaseUrl})" };
        var command = new Command("pull", "Download a Whisper model, verify its SHA-1 and write it atomically") { name, models, baseUrl };
        command.SetAction(async (parse, invocationToken) =>
        {
            using var interrupt = new Interrupt(invocationToken);
            var cancellationToken = interrupt.Token;
            var requested = parse.GetValue(name)!;
            if (KnownWhisperModels.Find(requested) is not { } model)
            {
                await Console.Error.WriteLineAsync($"lockn: unknown model '{requested}'; known models: {KnownWhisperModels.Names}");
                return 2;
            }

            ModelDownloadOptions options;
            try
            {
                options = ModelDownloadOptions.FromConfiguration(configuration);
            }
            catch (InvalidOperationException ex)
            {
                await Console.Error.WriteLineAsync($"lockn: invalid configuration: {ex.Message}");
                return 2;
            }

            if (options.TimeoutSeconds is < 1 or > ModelDownloadOptions.MaxTimeoutSeconds)
            {
                await Console.Error.WriteLineAsync($"lockn: invalid configuration: {ModelDownloadOptions.Section}:TimeoutSeconds must be between 1 and {ModelDownloadOptions.MaxTimeoutSeconds} (got {options.TimeoutSeconds})");
                return 2;
            }

            var source = parse.GetValue(baseUrl) ?? options.BaseUrl;
            if (!ModelDownloader.TryResolveUrl(source, model, out var url))
            {
                await Console.Error.WriteLineAsync($"lockn: base URL '{source}' is not an absolute http(s) URL");
                return 2;
            }

            var directories = Directories(parse.GetValue(models), configuration);
            var target = Path.Combine(directories.PullTarget, model.FileName);
            try
            {
                if (File.Exists(target) && (await ModelDownloader.ComputeSha1Async(target, cancellationToken)).Equals(model.Sha1, StringComparison.OrdinalIgnoreCase))
                {
                    Console.Out.WriteLine($"{model.ModelId} is already in {target} (SHA-1 verified)");
                    return 0;
                }

                var result = await PullAsync(model, url, directories.PullTarget, options.Timeout, cancellationToken);
                if (!result.Succeeded)
                {
                    await Console.Error.WriteLineAsync($"lockn: pull of {model.Name} failed: {result.Message}");
                    return 1;
                }

                Console.Out.WriteLine($"Pulled {model.ModelId} into {result.Path} ({Mebibytes(result.Bytes)}, SHA-1 verified)");
                return 0;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await Console.Error.WriteLineAsync($"lockn: pull of {model.Name} cancelled; nothing was written");
                return 130;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"lockn: cannot read {target}: {ex.Message}");
                return 1;
            }
        });
        return command;
    }

    private static async Task<ModelDownloadResult> PullAsync(KnownWhisperModel model, Uri url, string directory, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var downloader = new ModelDownloader(timeout);
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            await Console.Error.WriteLineAsync($"Pulling {model.FileName} from {ModelDownloader.Redact(url)} into {directory}");
            return await downloader.DownloadAsync(model, url, directory, new PlainProgress(model.FileName), cancellationToken);
        }

        ModelDownloadResult? result = null;
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(Markup.Escape(model.FileName), maxValue: 1);
                task.IsIndeterminate = true;
                result = await downloader.DownloadAsync(model, url, directory, new BarProgress(task), cancellationToken);
                if (result.Succeeded)
                {
                    task.Value = task.MaxValue;
                }

                task.StopTask();
            });
        return result!;
    }

    private static ModelDirectories Directories(string? option, IConfiguration configuration) =>
        option is not null ? ModelDirectories.Parse(option) : ModelDirectories.FromConfiguration(configuration);

    private static string Mebibytes(long bytes) => FormattableString.Invariant($"{bytes / (1024.0 * 1024):0.0} MiB");

    /// <summary>
    /// Ctrl+C and SIGTERM cancel the pull so the <c>.partial</c> is removed: <c>InvokeAsync()</c> without an
    /// <c>InvocationConfiguration</c> hooks no signals, and the default action would kill the process mid-write.
    /// </summary>
    private sealed class Interrupt : IDisposable
    {
        private readonly CancellationTokenSource source;
        private readonly PosixSignalRegistration sigint;
        private readonly PosixSignalRegistration sigterm;

        public Interrupt(CancellationToken invocationToken)
        {
            source = CancellationTokenSource.CreateLinkedTokenSource(invocationToken);
            sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
            sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);
        }

        public CancellationToken Token => source.Token;

        private void Cancel(PosixSignalContext context)
        {
            context.Cancel = true;
            source.Cancel();
        }

        public void Dispose()
        {
            sigint.Dispose();
            sigterm.Dispose();
            source.Dispose();
        }
    }

    private sealed class BarProgress(ProgressTask task) : IProgress<ModelDownloadProgress>
    {
        public void Report(ModelDownloadProgress value)
        {
            if (value.TotalBytes is > 0 and var total)
            {
                task.IsIndeterminate = false;
                task.MaxValue = total;
            }

            task.Value = value.BytesDone;
        }
    }

    /// <summary>Progress for logs and pipes: a line at most every few seconds, and one at the end.</summary>
    private sealed class PlainProgress(string fileName) : IProgress<ModelDownloadProgress>
    {
        private readonly Stopwatch sinceLast = Stopwatch.StartNew();

        public void Report(ModelDownloadProgress value)
        {
            var finished = value.BytesDone == value.TotalBytes;
            if (!finished && sinceLast.Elapsed < PlainProgressInterval)
            {
                return;
            }

            sinceLast.Restart();
            Console.Error.WriteLine(value.TotalBytes is { } total
                ? $"{fileName}: {Mebibytes(value.BytesDone)} of {Mebibytes(total)} ({value.Fraction:P0})"
                : $"{fileName}: {Mebibytes(value.BytesDone)}");
        }
    }
}
