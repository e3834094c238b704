using System.Diagnostics;
using System.Globalization;
using LockN.Hosting;
using LockN.Storage;
using LockN.Usage;
using Microsoft.Extensions.Logging.Abstractions;

namespace LockN.Bench;

/// <summary>
/// What the usage journal adds to a request: <see cref="UsageRecorder.TryRecord"/> timed call by call, in process, on
/// two recorders of this run over one SQLite ledger, one with the journal and one without, in alternating blocks so
/// both see the same machine state. Both writers run (batches to the database, the journal's trims and fsyncs).
/// </summary>
internal static class JournalBenchmark
{
    private const int Blocks = 100;
    private const int RecordsPerBlock = 1000;

    public static async Task<IEnumerable<string>> RunAsync()
    {
        var data = Path.Combine(Path.GetTempPath(), "lockn-bench-journal-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        try
        {
            var database = LockNDatabase.FromConfiguration(LockNConfiguration.Build(new Dictionary<string, string?> { ["Data"] = data, ["Db"] = "" }));
            await database.MigrateAsync(CancellationToken.None);
            var options = new UsageOptions { QueueCapacity = 10_000_000 }; // never full: the drop path is not what is measured
            using var journaled = new UsageRecorder(database, options, "bench", TimeProvider.System, NullLogger<UsageRecorder>.Instance, Path.Combine(data, UsageJournal.FolderName));
            using var plain = new UsageRecorder(database, options with { Journal = false }, "bench", TimeProvider.System, NullLogger<UsageRecorder>.Instance);
            await journaled.StartAsync(CancellationToken.None);
            await plain.StartAsync(CancellationToken.None);

            var with = new List<double>();
            var without = new List<double>();
            Measure(journaled, RecordsPerBlock, []); // warm-up: JIT, first segment file
            Measure(plain, RecordsPerBlock, []);
            for (var block = 0; block < Blocks; block++)
            {
                Measure(journaled, RecordsPerBlock, with);
                Measure(plain, RecordsPerBlock, without);
            }

            await journaled.StopAsync(CancellationToken.None);
            await plain.StopAsync(CancellationToken.None);
            var left = Directory.EnumerateFiles(Path.Combine(data, UsageJournal.FolderName)).Count();

            double P(List<double> values, double p) => Stats.Percentile(values, p) * 1_000_000; // s → µs
            return
            [
                "### Usage journal: added cost per request",
                "",
                $"UsageRecorder.TryRecord timed per call, in process, {Blocks} alternating blocks of {RecordsPerBlock} records per recorder, one thread; SQLite ledger, both writers running.",
                "",
                "| recorder | records | p50 µs | p90 µs | p99 µs |",
                "|---|---:|---:|---:|---:|",
                Row("queue only (Usage:Journal off)", without, P),
                Row("queue + journal line (default)", with, P),
                "",
                string.Create(CultureInfo.InvariantCulture,
                    $"**Added: p50 {P(with, 50) - P(without, 50):0.00} µs, p99 {P(with, 99) - P(without, 99):0.00} µs** (target p50 ≤ 10 µs). Written: {journaled.Written} + {plain.Written}; journal segments left after the stop: {left}."),
            ];
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private static string Row(string name, List<double> values, Func<List<double>, double, double> percentile) =>
        string.Create(CultureInfo.InvariantCulture, $"| {name} | {values.Count} | {percentile(values, 50):0.00} | {percentile(values, 90):0.00} | {percentile(values, 99):0.00} |");

    private static void Measure(UsageRecorder recorder, int count, List<double> seconds)
    {
        for (var i = 0; i < count; i++)
        {
            var record = new UsageRecord
            {
                At = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                KeyId = "key_bench0000",
                Endpoint = "/v1/audio/transcriptions",
                Model = "whisper-tiny.en",
                AudioSeconds = 11,
                StatusCode = 200,
                LatencyMs = 1234.5,
                Node = "bench",
            };
            var started = Stopwatch.GetTimestamp();
            var accepted = recorder.TryRecord(record);
            var elapsed = Stopwatch.GetElapsedTime(started);
            if (!accepted)
            {
                throw new InvalidOperationException("the recorder dropped a record");
            }

            seconds.Add(elapsed.TotalSeconds);
        }
    }
}
