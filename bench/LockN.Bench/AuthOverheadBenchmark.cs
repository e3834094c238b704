using System.Diagnostics;
using System.Globalization;

namespace LockN.Bench;

/// <summary>
/// What authentication (key parse, cached lookup, hash check, scope policy, rate limiters) and usage recording add
/// to one request: the same endpoint on two servers in this run, one with Keys:Required on, one with it off, called
/// alternately in blocks so both see the same machine state.
/// </summary>
internal static class AuthOverheadBenchmark
{
    private const int Blocks = 40;
    private const int RequestsPerBlock = 500;

    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options)
    {
        // A key of its own with limits far above what the benchmark sends, so the limiters count but never refuse.
        await using var secured = await BenchServer.StartAsync(options, slots: 1, new Dictionary<string, string?>
        {
            ["Keys:DefaultRequestsPerMinute"] = "1000000",
        });
        await using var open = await BenchServer.StartAsync(options, slots: 1, new Dictionary<string, string?>
        {
            ["Keys:Required"] = "false",
            ["Usage:Enabled"] = "false",
        });
        open.Client.DefaultRequestHeaders.Authorization = null;

        var withAuth = new List<double>();
        var without = new List<double>();
        await MeasureAsync(secured.Client, RequestsPerBlock, []); // warm-up: JIT, connection, key cache
        await MeasureAsync(open.Client, RequestsPerBlock, []);
        for (var block = 0; block < Blocks; block++)
        {
            await MeasureAsync(secured.Client, RequestsPerBlock, withAuth);
            await MeasureAsync(open.Client, RequestsPerBlock, without);
        }

        double P(List<double> values, double p) => Stats.Percentile(values, p) * 1000; // ms → µs
        return
        [
            "### Keys and usage: added latency per request",
            "",
            $"GET /v1/models on localhost, {Blocks} alternating blocks of {RequestsPerBlock} sequential requests per server, one client.",
            "",
            "| server | requests | p50 µs | p90 µs | p99 µs |",
            "|---|---:|---:|---:|---:|",
            Row("authentication off, usage off (baseline)", without, P),
            Row("API key + scope + rate limits + usage ledger", withAuth, P),
            "",
            string.Create(CultureInfo.InvariantCulture,
                $"**Added: p50 {P(withAuth, 50) - P(without, 50):0.0} µs, p99 {P(withAuth, 99) - P(without, 99):0.0} µs** (target p50 ≤ 50 µs); ratio p50 {P(withAuth, 50) / P(without, 50):0.000}."),
        ];
    }

    private static string Row(string name, List<double> values, Func<List<double>, double, double> percentile) =>
        string.Create(CultureInfo.InvariantCulture, $"| {name} | {values.Count} | {percentile(values, 50):0.0} | {percentile(values, 90):0.0} | {percentile(values, 99):0.0} |");

    private static async Task MeasureAsync(HttpClient client, int count, List<double> milliseconds)
    {
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await client.GetAsync("/v1/models");
            response.EnsureSuccessStatusCode();
            await response.Content.LoadIntoBufferAsync();
            milliseconds.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }
}
