using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LockN.Tests.Transcription;

/// <summary>
/// One slot, a queue of one, a 1.5 s wait deadline: the single-slot incident, reproduced, on the native runtime a
/// deployment on this machine runs (the other transcription tests use the packaged one).
/// </summary>
public sealed class OneSlotServerFixture : LockNServerFixture
{
    public static readonly byte[] TenMinutes = TestAudio.NoiseWav(600);
    public static readonly byte[] Jfk = File.ReadAllBytes(TestAssets.JfkWav);

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Transcription:Slots"] = "1",
        ["Transcription:SpareWorkers"] = "1",
        ["Transcription:QueueLength"] = "1",
        ["Transcription:QueueTimeoutSeconds"] = "1.5",
        ["Transcription:NativeRuntimePath"] = TestAssets.WhisperNativeRuntime,
    };
}

/// <summary>Compares a request's time with its time alone, so nothing else may run beside it on a 2-core machine.</summary>
[CollectionDefinition(DisableParallelization = true)]
public sealed class SlotDisciplineCollection;

[Collection(typeof(SlotDisciplineCollection))]
public class SlotDisciplineTests(OneSlotServerFixture server, ITestOutputHelper output) : IClassFixture<OneSlotServerFixture>
{
    [Fact]
    public async Task Abandoned_request_frees_its_slot_within_100ms()
    {
        // Earlier tests kill workers; their replacements load only once the model is quiet. Start from a fully warm
        // pool (one worker per slot plus the spare), as a server that has been ready for a while is.
        await LockNServerFixture.WaitForAsync(async () => (await server.DefaultModelAsync()).GetProperty("workers").GetInt32() == 2);
        var alone = await TimeShortRequestAsync();
        using var client = new CancellationTokenSource();
        var longRequest = PostAsync(OneSlotServerFixture.TenMinutes, client.Token);
        await WaitForBusySlotsAsync(1);
        await Task.Delay(500);

        var abandonedAt = Stopwatch.StartNew();
        await client.CancelAsync();
        await WaitForBusySlotsAsync(0);
        var freedAfter = abandonedAt.Elapsed;
        var next = await TimeShortRequestAsync();

        output.WriteLine($"slot freed {freedAfter.TotalMilliseconds:0.0} ms after the client left; next request {next.TotalMilliseconds:0} ms, alone {alone.TotalMilliseconds:0} ms");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => longRequest);
        Assert.True(freedAfter < TimeSpan.FromMilliseconds(100), $"slot freed {freedAfter.TotalMilliseconds:0} ms after the client left");
        Assert.True(next < (alone * 1.5) + TimeSpan.FromMilliseconds(200), $"next request took {next.TotalMilliseconds:0} ms, alone {alone.TotalMilliseconds:0} ms");
        Assert.Contains(server.Logs.Lines, line => line.Contains("killed it", StringComparison.Ordinal) || line.Contains("stopped its job", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Readiness_tells_the_truth_while_abandoned_uploads_kill_workers()
    {
        await LockNServerFixture.WaitForAsync(async () => (await server.DefaultModelAsync()).GetProperty("workers").GetInt32() == 2);
        var alone = await TimeShortRequestAsync();
        var killsBefore = server.Logs.Lines.Count(line => line.Contains("killed it", StringComparison.Ordinal));
        using var stopSampling = new CancellationTokenSource();
        var samples = SampleReadinessAsync(stopSampling.Token);

        var random = new Random(14);
        for (var i = 0; i < 10; i++)
        {
            using var client = new CancellationTokenSource();
            var abandoned = PostAsync(OneSlotServerFixture.TenMinutes, client.Token);
            await WaitForBusySlotsAsync(1);
            await Task.Delay(random.Next(0, 400));
            await client.CancelAsync();
            await Quietly(abandoned);
            await WaitForBusySlotsAsync(0);
        }

        var next = await TimeShortRequestAsync();
        await stopSampling.CancelAsync();
        var seen = await samples;
        var kills = server.Logs.Lines.Count(line => line.Contains("killed it", StringComparison.Ordinal)) - killsBefore;

        var summary = string.Join(", ", seen.GroupBy(s => s).OrderBy(g => g.Key.Workers).Select(g => $"{g.Key.Status}/{(g.Key.Ready ? "200" : "503")} with {g.Key.Workers} workers ×{g.Count()}"));
        output.WriteLine($"{kills} workers killed; readiness {summary}; next request {next.TotalMilliseconds:0} ms, alone {alone.TotalMilliseconds:0} ms ({next / alone:0.00}×)");
        Assert.True(seen.Count > 20, $"only {seen.Count} readiness samples");
        Assert.All(seen.Where(s => s.Workers == 0), s => Assert.False(s.Ready, "ready with no warm worker"));
        Assert.All(seen.Where(s => s.Workers < 2), s => Assert.Equal("degraded", s.Status));
        Assert.All(seen.Where(s => s.Status == "ready"), s => Assert.Equal(2, s.Workers));
        if (kills > 0)
        {
            Assert.Contains(seen, s => s.Status == "degraded");
        }

        Assert.True(next < (alone * 1.5) + TimeSpan.FromMilliseconds(200), $"next request took {next.TotalMilliseconds:0} ms, alone {alone.TotalMilliseconds:0} ms");
        await LockNServerFixture.WaitForAsync(async () => (await server.DefaultModelAsync()).GetProperty("workers").GetInt32() == 2);
    }

    private async Task<List<(string Status, bool Ready, int Workers)>> SampleReadinessAsync(CancellationToken stop)
    {
        var seen = new List<(string, bool, int)>();
        while (!stop.IsCancellationRequested)
        {
            using var response = await server.AnonymousClient.GetAsync("/health/ready", CancellationToken.None);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(CancellationToken.None);
            var model = body.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("default").GetBoolean());
            Assert.Equal(body.GetProperty("ready").GetBoolean(), response.StatusCode == HttpStatusCode.OK);
            seen.Add((body.GetProperty("status").GetString()!, body.GetProperty("ready").GetBoolean(), model.GetProperty("workers").GetInt32()));
            await Task.Delay(20, CancellationToken.None);
        }

        return seen;
    }

    [Fact]
    public async Task A_full_queue_is_refused_at_once_with_429_and_retry_after()
    {
        using var client = new CancellationTokenSource();
        var running = PostAsync(OneSlotServerFixture.TenMinutes, client.Token);
        await WaitForBusySlotsAsync(1);
        var waiting = PostAsync(OneSlotServerFixture.Jfk, client.Token);
        await LockNServerFixture.WaitForAsync(async () => (await QueueDepthAsync()) == 1);

        var started = Stopwatch.StartNew();
        using var refused = await server.Client.PostAsync("/v1/audio/transcriptions", TestAudio.Form(OneSlotServerFixture.Jfk, "jfk.wav", ("model", "whisper-1")));
        var answeredAfter = started.Elapsed;
        await client.CancelAsync();

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After missing");
        var error = (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("queue_full", error.GetProperty("code").GetString());
        Assert.True(answeredAfter < TimeSpan.FromSeconds(1), $"429 took {answeredAfter.TotalMilliseconds:0} ms");
        await Task.WhenAll(Quietly(running), Quietly(waiting));
        await WaitForBusySlotsAsync(0);
    }

    [Fact]
    public async Task Waiting_past_the_deadline_is_503()
    {
        using var client = new CancellationTokenSource();
        var running = PostAsync(OneSlotServerFixture.TenMinutes, client.Token);
        await WaitForBusySlotsAsync(1);

        var started = Stopwatch.StartNew();
        using var late = await server.Client.PostAsync("/v1/audio/transcriptions", TestAudio.Form(OneSlotServerFixture.Jfk, "jfk.wav", ("model", "whisper-1")));
        var waited = started.Elapsed;
        await client.CancelAsync();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, late.StatusCode);
        var error = (await late.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("deadline_exceeded", error.GetProperty("code").GetString());
        Assert.InRange(waited.TotalSeconds, 1.4, 5);
        await Quietly(running);
        await WaitForBusySlotsAsync(0);
    }

    private async Task<TimeSpan> TimeShortRequestAsync()
    {
        var started = Stopwatch.StartNew();
        using var response = await PostAsync(OneSlotServerFixture.Jfk, CancellationToken.None);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return started.Elapsed;
    }

    private Task<HttpResponseMessage> PostAsync(byte[] wav, CancellationToken cancellationToken) =>
        server.Client.PostAsync("/v1/audio/transcriptions", TestAudio.Form(wav, "audio.wav", ("model", "whisper-1")), cancellationToken);


    private async Task<int> QueueDepthAsync() => (await server.DefaultModelAsync()).GetProperty("queue").GetProperty("depth").GetInt32();

    private Task WaitForBusySlotsAsync(int busy) =>
        LockNServerFixture.WaitForAsync(async () => (await server.DefaultModelAsync()).GetProperty("slots").GetProperty("busy").GetInt32() == busy);


    private static async Task Quietly(Task<HttpResponseMessage> request)
    {
        try
        {
            (await request).Dispose();
        }
        catch (OperationCanceledException)
        {
        }
    }
}
