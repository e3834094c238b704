using System.Diagnostics;
using System.Globalization;
using LockN.Bench;

// A load harness, not a test: prints a Markdown report for docs/benchmarks.md.
//   dotnet run -c Release --project bench/LockN.Bench -- [--model whisper-tiny.en] [--shared ../shared] [--passes 2] [--only transcription|classification|auth|journal|streaming|dispatch|llama]
//   --only whisper-server [--model M] [--threads N]: LockN beside ../shared/whisper-native/bin/whisper-server (tiny.en and base.en unless --model).
//   --only long-audio: the server's and its worker's memory against hour-long inputs (about 10 minutes).
//   --only soak [--minutes 30] [--clients 8] [--set Key=Value ...]: `lockn serve` with a managed llama-server under a random mix of every kind of request, half the clients leaving mid-request; stuck slots, memory, ledger.
//   --only kill9 [--seconds 20] [--clients 4] [--set Key=Value ...]: kill -9 of `lockn serve` under load, then a restart on the same data directory; usage rows lost.
//   --only fairness [--set Key=Value ...]: one model's latency while another is saturated, on the defaults or with server settings changed.
//   --only malformed [--cases N]: N malformed uploads (default 10000) against both audio endpoints; not part of a plain run.
//   [--stream-seconds S]: shortens the streaming part (its single stream to ~S seconds, each concurrent one to at most S) for a quick check.
var options = BenchOptions.Parse(args);
var report = new List<string>
{
    $"Machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}; model {options.ModelId} from {options.ModelsDirectory}",
    $"Command: `dotnet run -c Release --project bench/LockN.Bench -- {string.Join(' ', args)}`",
    "",
};

var corpus = options.Runs("transcription") || options.Runs("streaming") ? await SpeechCorpus.LoadAsync(options.ManifestPath) : null;
if (options.Runs("transcription"))
{
    report.Add($"Corpus: {corpus!.Count} utterances, {corpus.TotalSeconds:0.0} s of audio ({options.ManifestPath}).");
    report.Add("");
    report.AddRange(await RealTimeFactorBenchmark.RunAsync(options, corpus));
    report.Add("");
    report.AddRange(await ThroughputBenchmark.RunAsync(options, corpus));
    report.Add("");
}

if (options.Runs("classification"))
{
    report.AddRange(await ClassificationBenchmark.RunAsync(options));
    report.Add("");
}

if (options.Runs("auth"))
{
    report.AddRange(await AuthOverheadBenchmark.RunAsync(options));
    report.Add("");
}

if (options.Runs("journal"))
{
    report.AddRange(await JournalBenchmark.RunAsync());
    report.Add("");
}

if (options.Runs("streaming"))
{
    report.AddRange(await StreamingBenchmark.RunAsync(options, corpus!));
    report.Add("");
}

if (options.Runs("dispatch"))
{
    report.AddRange(await DispatchBenchmark.RunAsync(options));
    report.Add("");
}

if (options.Runs("fairness"))
{
    report.AddRange(await FairnessBenchmark.RunAsync(options, options.Settings));
    report.Add("");
}

if (options.Runs("llama"))
{
    report.AddRange(await ManagedLlamaBenchmark.RunAsync(options));
}

// Not part of a plain run (about 10 minutes): server memory against hour-long inputs.
if (options.Only == "long-audio")
{
    report.AddRange(await LongAudioBenchmark.RunAsync(options));
}

if (options.Only == "malformed")
{
    report.AddRange(await MalformedBenchmark.RunAsync(options));
}

// Not part of a plain run (30 minutes by default): every kind of request at once, for as long as asked.
if (options.Only == "soak")
{
    report.AddRange(await SoakBenchmark.RunAsync(options));
}

// Not part of a plain run: the usage ledger across a kill -9 and a restart.
if (options.Only == "kill9")
{
    report.AddRange(await KillNineBenchmark.RunAsync(options));
}

// Not part of a plain run (about 15 minutes): LockN beside whisper.cpp's own server.
if (options.Only == "whisper-server")
{
    report.AddRange(await WhisperServerBenchmark.RunAsync(options, corpus ?? await SpeechCorpus.LoadAsync(options.ManifestPath)));
}

Console.WriteLine(string.Join('\n', report));
return 0;

namespace LockN.Bench
{
    internal sealed record BenchOptions(string ModelId, string SharedDirectory, int Passes, string? Only, double? StreamSeconds = null, bool ModelGiven = false, int? ThreadsGiven = null, int? Cases = null)
    {
        /// <summary>Server settings given as <c>--set Key=Value</c>, for the parts that take them.</summary>
        public Dictionary<string, string?> Settings { get; init; } = [];

        /// <summary>The command line, for the options only one part reads (<c>--minutes</c>, <c>--clients</c>).</summary>
        public IReadOnlyList<string> Args { get; init; } = [];

        public int Threads => ThreadsGiven ?? Environment.ProcessorCount;

        /// <summary>The number after <paramref name="name"/> on the command line, or <paramref name="fallback"/>.</summary>
        public double Number(string name, double fallback)
        {
            var index = Args.ToList().IndexOf(name);
            return index >= 0 && index + 1 < Args.Count ? double.Parse(Args[index + 1], CultureInfo.InvariantCulture) : fallback;
        }

        public IReadOnlyList<string> ModelsForSideBySide => ModelGiven ? [ModelId] : ["whisper-tiny.en", "whisper-base.en"];

        public bool Runs(string part) => Only is null || Only == part;

        public string ModelsDirectory => Path.Combine(SharedDirectory, "models", "whisper");
        public string ManifestPath => Path.Combine(SharedDirectory, "audio", "speech", "manifest.tsv");

        public static BenchOptions Parse(string[] args)
        {
            string Value(string name, string fallback)
            {
                var index = Array.IndexOf(args, name);
                return index >= 0 && index + 1 < args.Length ? args[index + 1] : fallback;
            }

            return new BenchOptions(
                Value("--model", "whisper-tiny.en"),
                Path.GetFullPath(Value("--shared", Path.Combine(FindRepositoryRoot(), "..", "shared"))),
                int.Parse(Value("--passes", "2"), CultureInfo.InvariantCulture),
                Array.IndexOf(args, "--only") >= 0 ? Value("--only", "") : null,
                Array.IndexOf(args, "--stream-seconds") >= 0 ? double.Parse(Value("--stream-seconds", ""), CultureInfo.InvariantCulture) : null,
                Array.IndexOf(args, "--model") >= 0,
                Array.IndexOf(args, "--threads") >= 0 ? int.Parse(Value("--threads", ""), CultureInfo.InvariantCulture) : null,
                Array.IndexOf(args, "--cases") >= 0 ? int.Parse(Value("--cases", ""), CultureInfo.InvariantCulture) : null)
            {
                Args = args,
                Settings = args.Zip(args.Skip(1)).Where(p => p.First == "--set" && p.Second.Contains('=', StringComparison.Ordinal))
                    .ToDictionary(p => p.Second[..p.Second.IndexOf('=', StringComparison.Ordinal)], p => (string?)p.Second[(p.Second.IndexOf('=', StringComparison.Ordinal) + 1)..]),
            };
        }

        private static string FindRepositoryRoot()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "LockN.slnx")))
                {
                    return dir.FullName;
                }
            }

            return Directory.GetCurrentDirectory();
        }
    }

    internal static class Stats
    {
        public static double Percentile(IReadOnlyList<double> values, double p)
        {
            var sorted = values.Order().ToArray();
            if (sorted.Length == 0)
            {
                return double.NaN;
            }

            var rank = p / 100 * (sorted.Length - 1);
            var low = (int)Math.Floor(rank);
            var high = (int)Math.Ceiling(rank);
            return sorted[low] + ((sorted[high] - sorted[low]) * (rank - low));
        }

        public static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0", CultureInfo.InvariantCulture) + " MiB";

        /// <summary>The change from <paramref name="before"/> to <paramref name="now"/> in percent (+12%).</summary>
        public static string Change(long now, long before) =>
            before == 0 ? "n/a" : Math.Round((now - before) / (double)before, 2).ToString("+0%;-0%;0%", CultureInfo.InvariantCulture);

        public static TimeSpan Time(Action action)
        {
            var started = Stopwatch.GetTimestamp();
            action();
            return Stopwatch.GetElapsedTime(started);
        }
    }
}
