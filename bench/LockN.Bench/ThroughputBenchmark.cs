using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace LockN.Bench;

/// <summary>Audio seconds served per wall second with 1, 2, 4 and 8 concurrent clients, for 1 and 2 slots.</summary>
internal static class ThroughputBenchmark
{
    private static readonly int[] ClientCounts = [1, 2, 4, 8];
    private static readonly int[] SlotCounts = [1, 2];

    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options, SpeechCorpus corpus)
    {
        var lines = new List<string>
        {
            "### Throughput (one pass over the corpus, shared by the clients)",
            "",
            "| slots | clients | wall s | audio s / wall s | requests/s | latency p50 s | latency p95 s | peak RSS server | peak RSS per worker |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        };
        foreach (var slots in SlotCounts)
        {
            await using var server = await BenchServer.StartAsync(options, slots);
            await server.TranscribeAsync(corpus[0]);
            foreach (var clients in ClientCounts)
            {
                var work = new ConcurrentQueue<Utterance>(corpus);
                var latencies = new ConcurrentBag<double>();
                var started = Stopwatch.GetTimestamp();
                await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
                {
                    while (work.TryDequeue(out var utterance))
                    {
                        var sent = Stopwatch.GetTimestamp();
                        await server.TranscribeAsync(utterance);
                        latencies.Add(Stopwatch.GetElapsedTime(sent).TotalSeconds);
                    }
                }));
                var wall = Stopwatch.GetElapsedTime(started).TotalSeconds;
                var (self, worker, _) = BenchServer.PeakResidentBytes();
                var values = latencies.ToArray();
                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $"| {slots} | {clients} | {wall:0.00} | {corpus.TotalSeconds / wall:0.0} | {corpus.Count / wall:0.00} | {Stats.Percentile(values, 50):0.00} | {Stats.Percentile(values, 95):0.00} | {Stats.Mib(self)} | {Stats.Mib(worker)} |"));
                Console.Error.WriteLine(lines[^1]);
            }
        }

        return lines;
    }
}
