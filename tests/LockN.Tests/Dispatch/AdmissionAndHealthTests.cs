using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LockN.Tests.Dispatch;

/// <summary>One slot, a queue of one: the second request waits, the third is refused.</summary>
public sealed class ShortQueueDispatchFixture : DispatchServerFixture
{
    protected override IDictionary<string, string?> BackendSettings => new Dictionary<string, string?> { ["QueueLength"] = "1" };

    // A test here checks that LockN stays ready while a backend is down: ready needs the speech model loaded.
    protected override bool WaitsForWhisper => true;
}

/// <summary>Bounded queues, deadlines while waiting, and a backend that goes down and comes back.</summary>
[Collection(typeof(Transcription.SlotDisciplineCollection))]
public class AdmissionAndHealthTests(ShortQueueDispatchFixture server, ITestOutputHelper output) : IClassFixture<ShortQueueDispatchFixture>
{
    [Fact]
    public async Task Request_beyond_the_queue_gets_429_with_retry_after_and_never_reaches_the_backend()
    {
        var running = "running-" + Guid.NewGuid().ToString("N");
        var waiting = "waiting-" + Guid.NewGuid().ToString("N");
        var refused = "refused-" + Guid.NewGuid().ToString("N");
        using var release = new CancellationTokenSource();
        var runningCall = server.Client.SendAsync(DispatchServerFixture.Chat(running, 8000, stream: false), release.Token);
        await server.StandIn.WaitForGenerationAsync(g => g.Prompt == running && g.StartedAt != 0);
        var waitingCall = server.Client.SendAsync(DispatchServerFixture.Chat(waiting, 8000, stream: false), release.Token);
        await WaitForAsync(async () => (await server.BackendAsync()).GetProperty("queue").GetProperty("depth").GetInt32() == 1);

        using var response = await server.Client.SendAsync(DispatchServerFixture.Chat(refused, 1, stream: false));

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "429 must say when to retry");
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("queue_full", error.GetProperty("code").GetString());
        Assert.Contains(DispatchServerFixture.Model, error.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(server.StandIn.Generations, g => g.Prompt == refused);

        await release.CancelAsync();
        await Task.WhenAll(Ignore(runningCall), Ignore(waitingCall));
        await WaitForAsync(async () => (await server.BackendAsync()).GetProperty("slots").GetProperty("busy").GetInt32() == 0);
    }

    [Fact]
    public async Task Request_whose_deadline_passes_in_the_queue_gets_503_and_never_reaches_the_backend()
    {
        var running = "running-" + Guid.NewGuid().ToString("N");
        var late = "late-" + Guid.NewGuid().ToString("N");
        using var release = new CancellationTokenSource();
        var runningCall = server.Client.SendAsync(DispatchServerFixture.Chat(running, 8000, stream: false), release.Token);
        await server.StandIn.WaitForGenerationAsync(g => g.Prompt == running && g.StartedAt != 0);

        var started = Stopwatch.GetTimestamp();
        using var response = await server.Client.SendAsync(DispatchServerFixture.Chat(late, 1, stream: false, deadlineSeconds: 0.5));
        var waited = Stopwatch.GetElapsedTime(started);

        output.WriteLine($"503 after {waited.TotalMilliseconds:0} ms (deadline 500 ms)");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("deadline_exceeded", error.GetProperty("code").GetString());
        Assert.InRange(waited.TotalMilliseconds, 450, 3000);
        Assert.DoesNotContain(server.StandIn.Generations, g => g.Prompt == late);

        await release.CancelAsync();
        await Ignore(runningCall);
    }

    [Fact]
    public async Task Backend_down_gets_503_naming_it_at_once_and_traffic_resumes_when_it_is_back()
    {
        await server.StandIn.StopAsync();
        try
        {
            // The first request finds the port closed (passive marking); the next is refused without trying.
            foreach (var attempt in new[] { "passive", "marked" })
            {
                var started = Stopwatch.GetTimestamp();
                using var response = await server.Client.SendAsync(DispatchServerFixture.Chat(attempt, 1, stream: false));
                var elapsed = Stopwatch.GetElapsedTime(started);
                output.WriteLine($"{attempt}: {(int)response.StatusCode} after {elapsed.TotalMilliseconds:0.0} ms");
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
                Assert.Equal("backend_unavailable", error.GetProperty("code").GetString());
                Assert.Contains("'coder'", error.GetProperty("message").GetString(), StringComparison.Ordinal);
                Assert.InRange(elapsed.TotalMilliseconds, 0, 500);
            }

            var backend = await server.WaitForBackendAsync("unhealthy", TimeSpan.FromSeconds(5));
            Assert.Contains("refused", backend.GetProperty("last_error").GetString(), StringComparison.OrdinalIgnoreCase);

            // LockN itself stays ready: a model server being down must not take the speech service out of rotation.
            var readiness = await server.ReadinessAsync();
            Assert.True(readiness.GetProperty("ready").GetBoolean());
            Assert.Equal("unhealthy", readiness.GetProperty("backends")[0].GetProperty("state").GetString());
        }
        finally
        {
            await server.StandIn.RestartAsync();
        }

        var back = Stopwatch.GetTimestamp();
        await server.WaitForBackendAsync("ready", TimeSpan.FromSeconds(5));
        using var resumed = await server.Client.SendAsync(DispatchServerFixture.Chat("resumed", 2, stream: false));
        output.WriteLine($"traffic resumed {Stopwatch.GetElapsedTime(back).TotalMilliseconds:0} ms after the backend came back");
        Assert.Equal(HttpStatusCode.OK, resumed.StatusCode);
    }

    [Fact]
    public async Task Backend_still_loading_its_model_is_loading_and_its_requests_get_503()
    {
        server.StandIn.Loading = true;
        try
        {
            var backend = await server.WaitForBackendAsync("loading", TimeSpan.FromSeconds(5));
            Assert.Contains("503", backend.GetProperty("last_error").GetString(), StringComparison.Ordinal);
            Assert.Contains("Loading model", backend.GetProperty("last_error").GetString(), StringComparison.Ordinal);

            using var response = await server.Client.SendAsync(DispatchServerFixture.Chat("while-loading", 1, stream: false));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.DoesNotContain(server.StandIn.Generations, g => g.Prompt == "while-loading");
        }
        finally
        {
            server.StandIn.Loading = false;
        }

        await server.WaitForBackendAsync("ready", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Admin_backends_shows_slots_read_from_the_server_queue_and_latency()
    {
        using var warm = await server.Client.SendAsync(DispatchServerFixture.Chat("warm", 1, stream: false));
        Assert.Equal(HttpStatusCode.OK, warm.StatusCode);

        var backend = await server.BackendAsync();

        Assert.Equal("coder", backend.GetProperty("name").GetString());
        Assert.Equal(server.StandIn.Slots, backend.GetProperty("slots").GetProperty("total").GetInt32());
        Assert.Equal("props", backend.GetProperty("slots").GetProperty("source").GetString());
        Assert.Equal(1, backend.GetProperty("queue").GetProperty("capacity").GetInt32());
        Assert.True(backend.GetProperty("health_latency_ms").GetDouble() > 0);
        Assert.True(backend.GetProperty("first_byte_latency_ms").GetDouble() > 0);
        Assert.Equal([DispatchServerFixture.Model, DispatchServerFixture.Alias], backend.GetProperty("models").EnumerateArray().Select(m => m.GetString()));

        using var anonymous = await server.AnonymousClient.GetAsync("/admin/backends");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    private static async Task Ignore(Task<HttpResponseMessage> call)
    {
        try
        {
            (await call).Dispose();
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = Stopwatch.GetTimestamp() + (5 * Stopwatch.Frequency);
        while (!await condition())
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, "condition not met within 5 s");
            await Task.Delay(5);
        }
    }
}
