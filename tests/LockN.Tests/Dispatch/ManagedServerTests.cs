using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LockN.Tests.Dispatch;

/// <summary>
/// LockN owning real llama-server processes: restarted after a crash, restarted when stuck, started on demand and
/// unloaded when idle or to make room, and controlled by an admin. Processes are checked from outside (pids, signals),
/// never through LockN's word alone.
/// </summary>
[Collection(typeof(Transcription.SlotDisciplineCollection))]
public class ManagedServerTests(ManagedDispatchFixture server, ITestOutputHelper output) : IClassFixture<ManagedDispatchFixture>
{
    [Fact]
    public async Task Kill_9_of_a_managed_server_mid_request_gives_a_clear_error_and_it_is_restarted_for_the_next_request()
    {
        var before = await server.WaitForStateAsync("one", "ready", TimeSpan.FromSeconds(30));
        var (pid, _) = await server.ProcessAsync("one");
        var restarts = before.GetProperty("process").GetProperty("restarts").GetInt32();

        foreach (var stream in new[] { false, true })
        {
            int port;
            (pid, port) = await server.ProcessAsync("one");
            using var request = ManagedDispatchFixture.Chat("one", "killed mid-answer", 8000, stream);
            var call = RealLlamaIncidentTests.CallAsync(server.Client, request, CancellationToken.None);
            using (var llama = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") })
            {
                var busy = RealLlamaIncidentTests.WaitForBusySlotAsync(llama); // a fresh server (or idle: the request before has ended)
                if (await Task.WhenAny(busy, call) == call)
                {
                    Assert.Fail($"The request ended before it was killed: {(int?)(await call).Status} {(await call).Body}\n{await server.BackendAsync("one")}");
                }

                await busy;
            }

            Signal(pid, "KILL");
            var outcome = await call.WaitAsync(TimeSpan.FromSeconds(20));
            output.WriteLine($"stream={stream}: {(int?)outcome.Status} {outcome.Body.Split('\n').LastOrDefault(l => l.Contains("error", StringComparison.Ordinal))}");
            Assert.Contains("\"backend_error\"", outcome.Body, StringComparison.Ordinal);
            Assert.Equal(stream ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable, outcome.Status); // a stream's status was sent before the kill

            // The next request waits for the restart (within its deadline) and succeeds.
            using var next = await server.Client.SendAsync(ManagedDispatchFixture.Chat("one", "after the crash", 4, stream: false));
            Assert.True(next.StatusCode == HttpStatusCode.OK, $"{(int)next.StatusCode} {await next.Content.ReadAsStringAsync()}");
            Assert.False(IsAlive(pid));
        }

        var after = await server.BackendAsync("one");
        output.WriteLine(after.GetProperty("process").ToString());
        Assert.Equal("ready", after.GetProperty("state").GetString());
        Assert.Equal(restarts + 2, after.GetProperty("process").GetProperty("restarts").GetInt32());
        Assert.Contains("signal 9", after.GetProperty("process").GetProperty("last_exit").GetString(), StringComparison.Ordinal);
        Assert.NotEqual(pid, after.GetProperty("process").GetProperty("pid").GetInt32());
    }

    [Fact]
    public async Task A_stuck_server_is_restarted_after_StallSeconds_and_the_request_holding_it_gets_an_error()
    {
        await server.WaitForStateAsync("one", "ready", TimeSpan.FromSeconds(30));
        var (pid, port) = await server.ProcessAsync("one");
        var restarts = (await server.BackendAsync("one")).GetProperty("process").GetProperty("restarts").GetInt32();
        var call = RealLlamaIncidentTests.CallAsync(server.Client, ManagedDispatchFixture.Chat("one", "stuck", 8000, stream: false), CancellationToken.None);
        using (var llama = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") })
        {
            await RealLlamaIncidentTests.WaitForBusySlotAsync(llama);
        }

        // SIGSTOP freezes the real server mid-generation: alive, holding its slot, sending nothing.
        var stoppedAt = Stopwatch.GetTimestamp();
        Signal(pid, "STOP");
        var outcome = await call.WaitAsync(TimeSpan.FromSeconds(30));
        var endedAfter = Stopwatch.GetElapsedTime(stoppedAt);
        output.WriteLine($"stalled request ended {endedAfter.TotalSeconds:0.00} s after the server froze: {(int?)outcome.Status} {outcome.Body}");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, outcome.Status);
        Assert.Contains("\"backend_stalled\"", outcome.Body, StringComparison.Ordinal);
        Assert.InRange(endedAfter.TotalSeconds, ManagedDispatchFixture.StallSeconds - 0.5, ManagedDispatchFixture.StallSeconds + 5);

        var restarted = await server.WaitForStateAsync("one", "ready", TimeSpan.FromSeconds(30));
        Assert.False(IsAlive(pid), "the frozen server was killed");
        Assert.Equal(restarts + 1, restarted.GetProperty("process").GetProperty("restarts").GetInt32());
        Assert.Contains("stalled", restarted.GetProperty("process").GetProperty("last_exit").GetString(), StringComparison.Ordinal);
        using var next = await server.Client.SendAsync(ManagedDispatchFixture.Chat("one", "after the stall", 4, stream: false));
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task On_demand_server_starts_for_its_first_request_and_is_unloaded_after_IdleUnloadSeconds()
    {
        Assert.Equal("stopped", (await server.BackendAsync("idle")).GetProperty("state").GetString());
        using var first = await server.Client.SendAsync(ManagedDispatchFixture.Chat("idle", "wake up", 4, stream: false));
        // Idle from the end of that request, not from after the admin call below (which a loaded machine may delay).
        var idleSince = Stopwatch.GetTimestamp();
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var running = await server.BackendAsync("idle");
        var pid = running.GetProperty("process").GetProperty("pid").GetInt32();
        output.WriteLine($"started on demand: {running.GetProperty("process")}");
        Assert.True(IsAlive(pid));
        Assert.True(running.GetProperty("process").GetProperty("last_start").GetProperty("loaded_ms").GetDouble() > 0);

        var stopped = await server.WaitForStateAsync("idle", "stopped", TimeSpan.FromSeconds(ManagedDispatchFixture.IdleUnloadSeconds + 10));
        var after = Stopwatch.GetElapsedTime(idleSince);
        await WaitUntilDeadAsync(pid);
        output.WriteLine($"unloaded {after.TotalSeconds:0.00} s after its last request: {stopped.GetProperty("last_error")}");
        Assert.InRange(after.TotalSeconds, ManagedDispatchFixture.IdleUnloadSeconds - 0.3, ManagedDispatchFixture.IdleUnloadSeconds + 3);
        Assert.Contains("IdleUnloadSeconds", stopped.GetProperty("process").GetProperty("last_exit").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Memory_budget_stops_the_idle_model_for_another_and_never_one_with_work_in_flight()
    {
        await StopAsync("lazy-a");
        await StopAsync("lazy-b");

        using (var a = await server.Client.SendAsync(ManagedDispatchFixture.Chat("lazy-a", "a", 4, stream: false)))
        {
            Assert.Equal(HttpStatusCode.OK, a.StatusCode);
        }

        var (pidA, _) = await server.ProcessAsync("lazy-a");

        // 600 + 600 MiB exceed the 1,000 MiB budget: lazy-a, idle, makes room for lazy-b.
        using (var b = await server.Client.SendAsync(ManagedDispatchFixture.Chat("lazy-b", "b", 4, stream: false)))
        {
            Assert.Equal(HttpStatusCode.OK, b.StatusCode);
        }

        var stoppedA = await server.BackendAsync("lazy-a");
        Assert.Equal("stopped", stoppedA.GetProperty("state").GetString());
        Assert.Contains("make room for 'lazy-b'", stoppedA.GetProperty("process").GetProperty("last_exit").GetString(), StringComparison.Ordinal);
        await WaitUntilDeadAsync(pidA);

        // lazy-b now has a request in flight (a stream its client does not read, so it stays in its slot).
        var (pidB, portB) = await server.ProcessAsync("lazy-b");
        using var holdB = new CancellationTokenSource();
        using var busy = await server.Client.SendAsync(ManagedDispatchFixture.Chat("lazy-b", "busy", 8000, stream: true), HttpCompletionOption.ResponseHeadersRead, holdB.Token);
        using (var llama = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{portB}") })
        {
            await RealLlamaIncidentTests.WaitForBusySlotAsync(llama);
        }

        var asked = Stopwatch.GetTimestamp();
        using (var refused = await server.Client.SendAsync(ManagedDispatchFixture.Chat("lazy-a", "no room", 4, stream: false)))
        {
            var error = (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
            output.WriteLine($"after {Stopwatch.GetElapsedTime(asked).TotalSeconds:0.00} s: {(int)refused.StatusCode} {error}");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("insufficient_capacity", error.GetProperty("code").GetString());
            Assert.True(refused.Headers.RetryAfter is not null);
        }

        Assert.True(IsAlive(pidB), "the model with a request in flight was not stopped");
        Assert.Equal(pidB, (await server.ProcessAsync("lazy-b")).Pid);

        // Once lazy-b is idle again, lazy-a gets its room.
        busy.Dispose();
        await holdB.CancelAsync();
        await WaitForIdleAsync("lazy-b");
        using (var a = await server.Client.SendAsync(ManagedDispatchFixture.Chat("lazy-a", "room now", 4, stream: false)))
        {
            Assert.Equal(HttpStatusCode.OK, a.StatusCode);
        }

        await WaitUntilDeadAsync(pidB);
        await StopAsync("lazy-a");
    }

    [Fact]
    public async Task Loading_server_answers_health_503_and_the_request_waits_for_it_within_its_deadline()
    {
        await StopAsync("slow");
        var call = server.Client.SendAsync(ManagedDispatchFixture.Chat("slow", "patience", 4, stream: false));
        var loading = await server.WaitForStateAsync("slow", "loading", TimeSpan.FromSeconds(10));
        var port = loading.GetProperty("process").GetProperty("port").GetInt32();
        using (var llama = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") })
        {
            // Asked directly while LockN says it is loading, llama-server agrees (or has just finished).
            var health = await GetHealthAsync(llama);
            output.WriteLine($"llama-server /health while loading: {health}");
        }

        using var response = await call.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var start = (await server.BackendAsync("slow")).GetProperty("process").GetProperty("last_start");
        output.WriteLine($"last start: {start}");
        Assert.True(start.GetProperty("loading_answers").GetInt32() > 0, "LockN saw llama-server's /health answer 503 while it loaded");
        Assert.True(start.GetProperty("loaded_ms").GetDouble() > start.GetProperty("process_start_ms").GetDouble());
        await StopAsync("slow");
    }

    [Fact]
    public async Task Loading_time_counts_against_the_deadline_of_the_request_that_waits_for_it()
    {
        await StopAsync("slow");
        var sent = Stopwatch.GetTimestamp();
        using (var late = await server.Client.SendAsync(ManagedDispatchFixture.Chat("slow", "in a hurry", 4, stream: false, deadlineSeconds: 0.3)))
        {
            var elapsed = Stopwatch.GetElapsedTime(sent);
            var error = (await late.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
            output.WriteLine($"{(int)late.StatusCode} after {elapsed.TotalMilliseconds:0} ms: {error}");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, late.StatusCode);
            Assert.Equal("deadline_exceeded", error.GetProperty("code").GetString());
            Assert.Contains("loading", error.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.InRange(elapsed.TotalSeconds, 0.25, 1.5); // timers may fire a millisecond early
        }

        // The load goes on for the requests after it.
        await server.WaitForStateAsync("slow", "ready", TimeSpan.FromSeconds(30));
        await StopAsync("slow");
    }

    [Fact]
    public async Task Admin_stops_starts_restarts_and_drains_a_managed_server_and_reads_its_log()
    {
        await server.WaitForStateAsync("two", "ready", TimeSpan.FromSeconds(30));
        var (pid, _) = await server.ProcessAsync("two");

        using (var drain = await server.Client.PostAsync("/admin/backends/two/drain", null))
        {
            var drained = await drain.Content.ReadAsStringAsync();
            output.WriteLine($"drain: {(int)drain.StatusCode} {drained}");
            Assert.Equal("draining", JsonDocument.Parse(drained).RootElement.GetProperty("state").GetString());
        }

        using (var refused = await server.Client.SendAsync(ManagedDispatchFixture.Chat("two", "while draining", 2, stream: false)))
        {
            var error = (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("draining", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        using (var stop = await server.Client.PostAsync("/admin/backends/two/stop", null))
        {
            Assert.Equal("stopped", (await stop.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString());
        }

        await WaitUntilDeadAsync(pid);
        using (var refused = await server.Client.SendAsync(ManagedDispatchFixture.Chat("two", "while stopped", 2, stream: false)))
        {
            var error = (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("/admin/backends/two/start", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        using (var start = await server.Client.PostAsync("/admin/backends/two/start", null))
        {
            Assert.Equal(HttpStatusCode.OK, start.StatusCode);
        }

        await server.WaitForStateAsync("two", "ready", TimeSpan.FromSeconds(30));
        var (restartedPid, _) = await server.ProcessAsync("two");
        using (var restart = await server.Client.PostAsync("/admin/backends/two/restart", null))
        {
            Assert.Equal(HttpStatusCode.OK, restart.StatusCode);
        }

        await WaitUntilDeadAsync(restartedPid);
        await server.WaitForStateAsync("two", "ready", TimeSpan.FromSeconds(30));
        using (var served = await server.Client.SendAsync(ManagedDispatchFixture.Chat("two", "back", 2, stream: false)))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        var log = await server.LogAsync("two");
        output.WriteLine(string.Join('\n', log.TakeLast(5)));
        Assert.Contains(log, l => l.Contains("[lockn] stopped: restarted by an admin", StringComparison.Ordinal));
        Assert.Contains(log, l => l.Contains("listening on http://127.0.0.1", StringComparison.Ordinal)); // llama-server's own output
        Assert.InRange(log.Count, 1, 500);

        using var unknown = await server.Client.PostAsync("/admin/backends/two/explode", null);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        using var missing = await server.Client.GetAsync("/admin/backends/nope/logs");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Server_that_keeps_crashing_is_failed_with_its_reason_until_an_admin_starts_it_again()
    {
        var failed = await server.WaitForStateAsync("broken", "failed", TimeSpan.FromSeconds(30));
        var process = failed.GetProperty("process");
        output.WriteLine(process.ToString());
        var reason = process.GetProperty("last_exit").GetString()!;
        Assert.Contains($"{5} times within", reason, StringComparison.Ordinal);
        Assert.Contains("exited with code", reason, StringComparison.Ordinal);
        Assert.Equal(4, process.GetProperty("restarts").GetInt32()); // the first start, then four restarts, then it is given up
        Assert.False(process.TryGetProperty("pid", out var pid) && pid.ValueKind == JsonValueKind.Number);

        using (var refused = await server.Client.SendAsync(ManagedDispatchFixture.Chat("broken", "hello", 2, stream: false)))
        {
            var error = (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("failed", error.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Contains("/admin/backends/broken/start", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        // llama-server's own words on why it cannot start are in the log an admin reads.
        var log = await server.LogAsync("broken");
        Assert.Contains(log, l => l.Contains("gguf", StringComparison.OrdinalIgnoreCase) && !l.StartsWith("[lockn]", StringComparison.Ordinal));

        using (var start = await server.Client.PostAsync("/admin/backends/broken/start", null))
        {
            Assert.Equal(HttpStatusCode.OK, start.StatusCode);
        }

        var again = await server.WaitForStateAsync("broken", "failed", TimeSpan.FromSeconds(30));
        Assert.True(again.GetProperty("process").GetProperty("restarts").GetInt32() > 4, "an admin start tries again");
    }

    [Fact]
    public async Task Model_file_that_is_not_there_fails_the_start_with_a_message_naming_it()
    {
        using var response = await server.Client.SendAsync(ManagedDispatchFixture.Chat("missing", "hello", 2, stream: false));
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        output.WriteLine(error.ToString());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("GET /admin/backends/missing", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(ManagedDispatchFixture.LlamaModels, error.GetProperty("message").GetString(), StringComparison.Ordinal); // paths are for admins

        var backend = await server.BackendAsync("missing");
        Assert.Equal("failed", backend.GetProperty("state").GetString());
        Assert.Contains("'no-such-model.gguf' was not found under the model directories", backend.GetProperty("process").GetProperty("last_exit").GetString(), StringComparison.Ordinal);

        // /health/ready, open to anyone, says that it failed and not why.
        var readiness = await server.ReadinessAsync();
        var shown = readiness.GetProperty("backends").EnumerateArray().Single(b => b.GetProperty("name").GetString() == "missing");
        Assert.Equal("failed", shown.GetProperty("state").GetString());
        Assert.DoesNotContain(ManagedDispatchFixture.LlamaModels, readiness.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(server.BrokenModel, readiness.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lockn_backends_lists_controls_and_reads_logs_of_a_running_server()
    {
        await server.WaitForStateAsync("one", "ready", TimeSpan.FromSeconds(30));
        string[] target = ["--url", server.BaseAddress.ToString(), "--key", server.AdminKey];
        var list = await Cli.LocknProcess.RunAsync(["backends", "list", .. target]);
        output.WriteLine(list.Stdout);
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("one", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("ready", list.Stdout, StringComparison.Ordinal);

        var json = await Cli.LocknProcess.RunAsync(["backends", "list", "--json", .. target]);
        var listed = JsonDocument.Parse(json.Stdout).RootElement.GetProperty("data").EnumerateArray().Select(b => b.GetProperty("name").GetString()).ToArray();
        Assert.Contains("two", listed);
        Assert.Contains("lazy-a", listed);

        var logs = await Cli.LocknProcess.RunAsync(["backends", "logs", "one", "--lines", "3", .. target]);
        Assert.Equal(0, logs.ExitCode);
        Assert.Equal(3, logs.Stdout.TrimEnd('\n').Split('\n').Length);

        var stop = await Cli.LocknProcess.RunAsync(["backends", "stop", "idle", .. target]);
        Assert.Equal(0, stop.ExitCode);
        Assert.Contains("idle: stopped", stop.Stdout, StringComparison.Ordinal);

        var notManaged = await Cli.LocknProcess.RunAsync(["backends", "restart", "nope", .. target]);
        Assert.Equal(1, notManaged.ExitCode);
        Assert.Contains("No backend is named 'nope'", notManaged.Stderr, StringComparison.Ordinal);

        var noKey = await Cli.LocknProcess.RunAsync(["backends", "list", "--url", server.BaseAddress.ToString()], new Dictionary<string, string> { ["LOCKN_API_KEY"] = "" });
        Assert.Equal(1, noKey.ExitCode);
        Assert.Single(noKey.Stderr.Trim().Split('\n'));
    }

    private async Task StopAsync(string name)
    {
        using var response = await server.Client.PostAsync($"/admin/backends/{name}/stop", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private async Task WaitForIdleAsync(string name)
    {
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while ((await server.BackendAsync(name)).GetProperty("slots").GetProperty("busy").GetInt32() != 0)
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, $"{name} kept its slot busy");
            await Task.Delay(10);
        }
    }

    private static async Task<string> GetHealthAsync(HttpClient llama)
    {
        try
        {
            using var response = await llama.GetAsync("/health");
            return $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
        }
        catch (HttpRequestException ex)
        {
            return ex.Message;
        }
    }

    internal static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>True while the process exists and is not a zombie (a zombie holds no memory; its parent has yet to reap it).</summary>
    internal static bool IsAlive(int pid)
    {
        var stat = $"/proc/{pid}/stat";
        try
        {
            var text = File.ReadAllText(stat);
            var state = text[(text.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state != "Z";
        }
        catch (IOException)
        {
            return false;
        }
    }

    internal static async Task WaitUntilDeadAsync(int pid)
    {
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (IsAlive(pid))
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, $"process {pid} is still running");
            await Task.Delay(20);
        }
    }
}
