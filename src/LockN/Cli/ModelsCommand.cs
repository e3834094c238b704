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

    public static Command Create() =>
        new("models", "List and download Whisper models") { CreateList(), CreatePull() };

    /// <summary>The model settings serve reads (<c>Transcription</c>, <c>ModelDownload</c>, <c>Models</c>), validated as serve validates them.</summary>
    private static Task<int> RunAsync(Dictionary<string, string?> overrides, Func<CommandHost, Task<int>> command) =>
        CommandHost.RunAsync(overrides, (services, configuration) => services.AddTranscription(configuration), command);

    private static Command CreateList()
    {
        var models = CommandHost.ModelsOption();
        var command = new Command("list", "List the downloadable models and where each is on disk") { models };
        command.SetAction(parse => RunAsync(new() { [ModelDirectories.ConfigurationKey] = parse.GetValue(models) }, host =>
        {
            var directories = host.Get<ModelDirectories>();
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
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command CreatePull()
    {
        var name = new Argument<string>("name") { Description = $"Model to download: {KnownWhisperModels.Names}" };
        var models = CommandHost.ModelsOption();
        var baseUrl = new Option<string?>("--base-url") { Description = $"Download location, {ModelDownloadOptions.Section}:BaseUrl (env LOCKN_ModelDownload__BaseUrl; default {KnownWhisperModels.DefaultBaseUrl})" };
        var command = new Command("pull", "Download a Whisper model, verify its SHA-1 and write it atomically") { name, models, baseUrl };
        command.SetAction((parse, invocationToken) => RunAsync(
            new() { [ModelDirectories.ConfigurationKey] = parse.GetValue(models), [$"{ModelDownloadOptions.Section}:BaseUrl"] = parse.GetValue(baseUrl) },
            async host =>
            {
                using var interrupt = new Interrupt(invocationToken);
                var cancellationToken = interrupt.Token;
                var requested = parse.GetValue(name)!;
                if (KnownWhisperModels.Find(requested) is not { } model)
                {
                    await Console.Error.WriteLineAsync($"lockn: unknown model '{requested}'; known models: {KnownWhisperModels.Names}");
                    return 2;
                }

                var options = host.Options<ModelDownloadOptions>();
                if (!ModelDownloader.TryResolveUrl(options.BaseUrl, model, out var url))
                {
                    await Console.Error.WriteLineAsync($"lockn: invalid configuration: {ModelDownloadOptions.Section}:BaseUrl must be an absolute http(s) URL (got '{options.BaseUrl}')");
                    return 2;
                }

                var directories = host.Get<ModelDirectories>();
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
                        // Without a network (or with a proxy in the way) say, as serve does, how to supply the file by hand.
                        var hint = result.Error is ModelDownloadError.Network or ModelDownloadError.TimedOut ? " " + ModelDownloader.ManualHint(model, directories) : "";
                        await Console.Error.WriteLineAsync($"lockn: pull of {model.Name} failed: {result.Message!.TrimEnd('.')}.{hint}");
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
            }));
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
