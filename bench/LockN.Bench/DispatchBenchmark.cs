using System.Diagnostics;
using System.Globalization;
using System.Text;
using LockN.Tests.Dispatch;

namespace LockN.Bench;

/// <summary>
/// What the Dispatch front door adds to a chat request: the llama-server stand-in called directly against the same
/// stand-in through LockN (API key, scope, rate limits, body spool, slot admission, forwarding, usage ledger),
/// 1-token answers so the proxy's own cost is what is measured. Latency in alternating blocks of sequential
/// requests; throughput with concurrent clients, each path in turn.
/// </summary>
internal static class DispatchBenchmark
{
    private const string Model = "bench-chat";
    private const int Blocks = 20;
    private const int RequestsPerBlock = 250;
    private const int Clients = 16;
    private static readonly TimeSpan ThroughputWindow = TimeSpan.FromSeconds(5);

    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options)
    {
        await using var standIn = await LlamaServerStandIn.StartAsync(slots: 64, TimeSpan.Zero);
        await using var lockn = await BenchServer.StartAsync(options, slots: 1, new Dictionary<string, string?>
        {
            ["Keys:DefaultRequestsPerMinute"] = "1000000",
            ["Dispatch:Backends:0:Name"] = "stand-in",
            ["Dispatch:Backends:0:Url"] = standIn.BaseAddress.ToString(),
            ["Dispatch:Backends:0:Models:0"] = Model,
            ["Dispatch:Backends:0:QueueLength"] = "1000",
        });
        using var direct = new HttpClient { BaseAddress = standIn.BaseAddress };

        var results = new List<string>
        {
            "### Dispatch: added latency and throughput against calling llama-server directly",
            "",
            $"A llama-server stand-in (64 slots, answers at once) on 127.0.0.1, called directly and through LockN in the same run; chat completions with `max_tokens: 1`. " +
            $"Latency: {Blocks} alternating blocks of {RequestsPerBlock} sequential requests per path. Throughput: {Clients} concurrent clients for {ThroughputWindow.TotalSeconds:0} s per path. " +
            "Client, LockN and stand-in share the machine's cores.",
            "",
        };

        foreach (var stream in new[] { false, true })
        {
            var directMs = new List<double>();
            var gatewayMs = new List<double>();
            await MeasureAsync(direct, stream, RequestsPerBlock, []); // warm-up: JIT, connections, key cache
            await MeasureAsync(lockn.Client, stream, RequestsPerBlock, []);
            for (var block = 0; block < Blocks; block++)
            {
                await MeasureAsync(direct, stream, RequestsPerBlock, directMs);
                await MeasureAsync(lockn.Client, stream, RequestsPerBlock, gatewayMs);
            }

            double P(List<double> values, double p) => Stats.Percentile(values, p);
            var kind = stream ? "streamed (`stream: true`)" : "plain JSON";
            results.AddRange(
            [
                $"Latency, {kind}:",
                "",
                "| path | requests | p50 ms | p90 ms | p99 ms |",
                "|---|---:|---:|---:|---:|",
                Row("stand-in directly (baseline)", directMs, P),
                Row("through LockN", gatewayMs, P),
                "",
                string.Create(CultureInfo.InvariantCulture,
                    $"**Added: p50 {P(gatewayMs, 50) - P(directMs, 50):0.000} ms, p99 {P(gatewayMs, 99) - P(directMs, 99):0.000} ms** (target p50 ≤ 1 ms); ratio p50 {P(gatewayMs, 50) / P(directMs, 50):0.00}."),
                "",
            ]);
        }

        var directRate = await ThroughputAsync(direct);
        var gatewayRate = await ThroughputAsync(lockn.Client);
        results.AddRange(
        [
            "Maximum throughput, plain JSON:",
            "",
            "| path | requests/s |",
            "|---|---:|",
            string.Create(CultureInfo.InvariantCulture, $"| stand-in directly (baseline) | {directRate:0} |"),
            string.Create(CultureInfo.InvariantCulture, $"| through LockN | {gatewayRate:0} |"),
            "",
            string.Create(CultureInfo.InvariantCulture, $"**Ratio through LockN / direct: {gatewayRate / directRate:0.00}.**"),
        ]);
        return results;
    }

    private static string Row(string name, List<double> values, Func<List<double>, double, double> percentile) =>
        string.Create(CultureInfo.InvariantCulture, $"| {name} | {values.Count} | {percentile(values, 50):0.000} | {percentile(values, 90):0.000} | {percentile(values, 99):0.000} |");

    private static HttpRequestMessage Request(bool stream) => new(HttpMethod.Post, "/v1/chat/completions")
    {
        Content = new StringContent(
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"Say one word."}],"max_tokens":1,"stream":{{(stream ? "true" : "false")}}}""",
            Encoding.UTF8, "application/json"),
    };

    private static async Task MeasureAsync(HttpClient client, bool stream, int count, List<double> milliseconds)
    {
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await client.SendAsync(Request(stream));
            response.EnsureSuccessStatusCode();
            milliseconds.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    private static async Task<double> ThroughputAsync(HttpClient client)
    {
        var completed = 0;
        var until = Stopwatch.GetTimestamp() + (long)(ThroughputWindow.TotalSeconds * Stopwatch.Frequency);
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async _ =>
        {
            while (Stopwatch.GetTimestamp() < until)
            {
                using var response = await client.SendAsync(Request(stream: false));
                response.EnsureSuccessStatusCode();
                await response.Content.LoadIntoBufferAsync();
                Interlocked.Increment(ref completed);
            }
        }));
        return completed / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }
}
