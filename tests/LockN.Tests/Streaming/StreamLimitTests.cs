using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using LockN.Streaming;
using LockN.Tests.Transcription;

namespace LockN.Tests.Streaming;

/// <summary>One Whisper slot and tight stream limits.</summary>
public sealed class TightStreamingServerFixture : LockNServerFixture
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Transcription:Slots"] = "1",
        ["Transcription:SpareWorkers"] = "1",
        ["Streaming:MaxStreams"] = "3",
        ["Streaming:MaxStreamsPerKey"] = "1",
        ["Streaming:IdleTimeoutSeconds"] = "1",
        ["Streaming:MaxBacklogSeconds"] = "3",
    };
}

/// <summary>Measures how fast a slot is freed, so it runs alone like the other slot-discipline tests.</summary>
[Collection(typeof(SlotDisciplineCollection))]
public class StreamLimitTests(TightStreamingServerFixture server, ITestOutputHelper output) : IClassFixture<TightStreamingServerFixture>
{
    private static readonly float[] Jfk = StreamAudio.ReadWav(TestAssets.JfkWav).Samples;

    [Fact]
    public async Task A_client_that_disappears_mid_transcription_frees_the_slot_within_100ms()
    {
        await using var client = await StreamClient.ConnectAsync(server.BaseAddress, await CreateKeyAsync(), CancellationToken.None);
        await client.UpdateSessionAsync(new { turn_detection = (object?)null }, CancellationToken.None);
        await client.StreamAsync(StreamAudio.Pcm16([.. Jfk, .. Jfk]), 32000, speed: 0, CancellationToken.None);
        await client.CommitAsync(CancellationToken.None);
        await WaitUntilAsync(async () => await BusySlotsAsync() == 1);

        client.Abort();
        var abortedAt = Stopwatch.StartNew();
        await WaitUntilAsync(async () => await BusySlotsAsync() == 0);
        var freedAfter = abortedAt.Elapsed;

        output.WriteLine($"slot freed {freedAfter.TotalMilliseconds:0.0} ms after the client dropped the connection");
        Assert.True(freedAfter < TimeSpan.FromMilliseconds(100), $"slot freed {freedAfter.TotalMilliseconds:0} ms after the client left");
        await WaitUntilAsync(() => Task.FromResult(server.Services.GetRequiredService<StreamLimits>().Open == 0));
    }

    [Fact]
    public async Task Audio_faster_than_the_slots_past_the_backlog_gets_an_error_and_close_1008()
    {
        await using var client = await StreamClient.ConnectAsync(server.BaseAddress, await CreateKeyAsync(), CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var events = new List<ReceivedStreamEvent>();
        var reading = Task.Run(async () =>
        {
            await foreach (var received in client.ReadEventsAsync(timeout.Token))
            {
                events.Add(received);
            }
        });
        await client.UpdateSessionAsync(new { turn_detection = (object?)null }, timeout.Token);
        var second = StreamAudio.Pcm16(Jfk[..16000]);
        try
        {
            for (var i = 0; i < 30 && client.State == WebSocketState.Open; i++)
            {
                await client.SendAudioAsync(second, timeout.Token);
                await client.CommitAsync(timeout.Token);
            }
        }
        catch (WebSocketException)
        {
            // the server closed while we were still sending
        }

        await reading;
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, client.CloseStatus);
        Assert.Contains(events, e => e.Type == "error" && e.Body.GetProperty("error").GetProperty("code").GetString() == "backlog_exceeded");
        output.WriteLine($"{events.Count(e => e.Type == "transcript.completed")} utterances transcribed before the close");
    }

    [Fact]
    public async Task A_silent_client_is_closed_after_the_idle_timeout()
    {
        await using var client = await StreamClient.ConnectAsync(server.BaseAddress, await CreateKeyAsync(), CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var started = Stopwatch.StartNew();
        var types = new List<string>();
        JsonElement? error = null;
        await foreach (var received in client.ReadEventsAsync(timeout.Token))
        {
            types.Add(received.Type);
            error ??= received.Type == "error" ? received.Body.GetProperty("error") : null;
        }

        Assert.Equal("idle_timeout", error?.GetProperty("code").GetString());
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        Assert.InRange(started.Elapsed.TotalSeconds, 0.9, 5);
    }

    [Fact]
    public async Task Streams_past_the_per_key_and_server_limits_are_closed_with_1013()
    {
        var key = await CreateKeyAsync();
        await using var first = await StreamClient.ConnectAsync(server.BaseAddress, key, CancellationToken.None);
        var secondForKey = await ClosedWithAsync(key);
        Assert.Equal(1013, (int)secondForKey.Status!);
        Assert.Contains("API key", secondForKey.Reason, StringComparison.Ordinal);

        await using var other1 = await StreamClient.ConnectAsync(server.BaseAddress, await CreateKeyAsync(), CancellationToken.None);
        await using var other2 = await StreamClient.ConnectAsync(server.BaseAddress, await CreateKeyAsync(), CancellationToken.None);
        await WaitUntilAsync(() => Task.FromResult(server.Services.GetRequiredService<StreamLimits>().Open == 3));
        var overServer = await ClosedWithAsync(await CreateKeyAsync());
        Assert.Equal(1013, (int)overServer.Status!);
        Assert.Contains("server", overServer.Reason, StringComparison.Ordinal);
    }

    private async Task<(WebSocketCloseStatus? Status, string Reason)> ClosedWithAsync(string key)
    {
        await using var client = await StreamClient.ConnectAsync(server.BaseAddress, key, CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var received in client.ReadEventsAsync(timeout.Token))
        {
            Assert.Fail($"a refused stream sent {received.Type}");
        }

        return (client.CloseStatus, client.CloseStatusDescription ?? "");
    }

    private async Task<string> CreateKeyAsync()
    {
        using var response = await server.Client.PostAsJsonAsync("/admin/keys", new { name = "streams", scopes = new[] { "stream" } });
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
    }

    private async Task<int> BusySlotsAsync() =>
        (await server.ReadinessAsync()).GetProperty("models").EnumerateArray()
            .Single(m => m.GetProperty("default").GetBoolean()).GetProperty("slots").GetProperty("busy").GetInt32();

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "condition not reached within 30 s");
            await Task.Delay(2);
        }
    }
}
