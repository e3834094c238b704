using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace LockN.Bench;

/// <summary>
/// The usage ledger across a crash: clients loop GET /v1/models (cheap, authenticated, one ledger row each) against a
/// `lockn serve` process; after a while the server alone gets kill -9; `lockn serve` starts again on the same data
/// directory, and its ledger is compared with the 200s the clients received in full. A row is lost when a 200 reached
/// its client and no 2xx row of /v1/models (model: none) is in the ledger for it.
/// </summary>
internal static class KillNineBenchmark
{
    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options)
    {
        var seconds = options.Number("--seconds", 20);
        var clients = (int)options.Number("--clients", 4);
        var scratch = Directory.CreateTempSubdirectory("lockn-kill9-");
        var data = Path.Combine(scratch.FullName, "data");
        try
        {
            long received = 0, cutByKill = 0;
            var failedBeforeKill = new ConcurrentDictionary<string, int>();
            IReadOnlyList<string> childrenAlive;
            TimeSpan ran;
            var settings = new Dictionary<string, string?>(options.Settings);
            settings.TryAdd("Keys:DefaultRequestsPerMinute", "1000000"); // the per-key limit (600) would refuse most of them
            await using (var server = await ServeProcess.StartAsync(options, data, settings))
            {
                var loops = Enumerable.Range(0, clients).Select(client => Task.Run(async () =>
                {
                    while (true)
                    {
                        try
                        {
                            using var response = await server.Client.GetAsync("/v1/models");
                            _ = await response.Content.ReadAsByteArrayAsync();
                            if (response.IsSuccessStatusCode)
                            {
                                Interlocked.Increment(ref received);
                            }
                            else
                            {
                                failedBeforeKill.AddOrUpdate($"HTTP {(int)response.StatusCode}", 1, (_, n) => n + 1);
                            }
                        }
                        catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
                        {
                            await Task.Delay(100); // the kill's resets can arrive before the exit is seen
                            if (server.HasExited)
                            {
                                Interlocked.Increment(ref cutByKill); // in flight at the kill, or sent after it: this client stops
                                break;
                            }

                            failedBeforeKill.AddOrUpdate(ex.GetType().Name, 1, (_, n) => n + 1);
                        }
                    }
                })).ToList();

                var started = DateTime.UtcNow;
                await Task.Delay(TimeSpan.FromSeconds(seconds));
                ran = DateTime.UtcNow - started;
                childrenAlive = await server.KillServerThenChildrenAsync();
                await Task.WhenAll(loops);
            }

            Console.Error.WriteLine(FormattableString.Invariant($"kill9: {received} 200s received in {ran.TotalSeconds:0.0} s; restarting on {data}"));
            await using var restarted = await ServeProcess.StartAsync(options, data, settings);
            await Task.Delay(3000); // the ledger writer's batch (Usage:FlushIntervalMilliseconds, 1 s) and any replay
            var usage = await restarted.Client.GetFromJsonAsync<JsonElement>("/admin/usage?group_by=model");
            long rows = 0, errorRows = 0, otherRows = 0;
            foreach (var group in usage.GetProperty("data").EnumerateArray())
            {
                if (group.GetProperty("group").ValueKind == JsonValueKind.Null)
                {
                    rows = group.GetProperty("requests").GetInt64();
                    errorRows = group.GetProperty("errors").GetInt64();
                }
                else
                {
                    otherRows += group.GetProperty("requests").GetInt64();
                }
            }

            var okRows = rows - errorRows;
            var journal = options.Settings.TryGetValue("Usage:Journal", out var value) ? $"Usage:Journal={value}" : "the defaults";
            return
            [
                "### Usage rows across kill -9",
                "",
                FormattableString.Invariant($"`lockn serve` as its own process on {journal} (Keys:DefaultRequestsPerMinute raised), {clients} clients looping GET /v1/models with the admin key for {seconds:0} s, then kill -9 of the server alone ") +
                "(its children after a second, so none is left); `lockn serve` again on the same data directory, and GET /admin/usage?group_by=model 3 s after it is ready. " +
                "GET /v1/models has no model: its rows are the group `null`. A 200 counts when its whole body reached the client.",
                "",
                "| 200s received | requests cut by the kill | other failures before the kill | ledger rows (2xx) | ledger rows ≥ 400 | rows of other groups | **lost rows (200s − 2xx rows)** |",
                "|---:|---:|---:|---:|---:|---:|---:|",
                FormattableString.Invariant($"| {received} | {cutByKill} | {(failedBeforeKill.IsEmpty ? "0" : string.Join(", ", failedBeforeKill.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}: {f.Value}")))} | {okRows} | {errorRows} | {otherRows} | **{received - okRows}** |"),
                "",
                FormattableString.Invariant($"Children of the killed server still alive a second after it: {childrenAlive.Count}{(childrenAlive.Count > 0 ? $" ({string.Join(", ", childrenAlive)}), then killed by the harness" : "")}. ") +
                (received - okRows > 0
                    ? $"{(received - okRows).ToString(CultureInfo.InvariantCulture)} answered requests left no row: the records still in the ledger writer's queue at the kill."
                    : received - okRows < 0
                        ? "The ledger has more 2xx rows than 200s received: requests the server answered whose answers the kill cut before they reached the client."
                        : "Every 200 a client received is in the ledger."),
            ];
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }
}
