using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using LockN.Tests.Storage;
using LockN.Usage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;

namespace LockN.Tests.Usage;

/// <summary>What the middleware writes for requests that do not end with a response, and for several nodes at once.</summary>
public class UsageRecordingTests(PostgresServer postgres)
{
    private static readonly byte[] TwoMinutes = TestAudio.NoiseWav(120);
    private static readonly Dictionary<string, string?> FlushAtOnce = new() { ["Usage:FlushIntervalMilliseconds"] = "10" };

    [Fact]
    public async Task Requests_are_stamped_and_timed_and_reports_bounded_by_the_servers_clock()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        var node = "clocked-" + Guid.NewGuid().ToString("N")[..8];
        var clock = new FakeTimeProvider(new DateTimeOffset(2031, 5, 6, 7, 8, 9, 123, TimeSpan.Zero));
        var server = await LedgerServer.StartAsync(test, node, clock: clock);
        JsonElement report;
        try
        {
            using var response = await server.Client.GetAsync("/v1/models");
            response.EnsureSuccessStatusCode();
            report = await server.Client.GetFromJsonAsync<JsonElement>("/admin/usage");
        }
        finally
        {
            await server.DisposeAsync(); // graceful: the ledger is flushed
        }

        await using var db = test.Database.Open();
        var row = await db.Usage.SingleAsync(u => u.Node == node);
        Assert.Equal(clock.GetUtcNow().ToUnixTimeMilliseconds(), row.At);
        Assert.Equal(0, row.LatencyMs); // the clock did not move while the request ran
        Assert.Equal(UsageQuery.Format(clock.GetUtcNow()), report.GetProperty("to").GetString());
        Assert.Equal(UsageQuery.Format(clock.GetUtcNow().AddDays(-30)), report.GetProperty("from").GetString());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_transcription_whose_client_left_is_recorded_as_499_with_its_model_and_audio(Provider provider)
    {
        await using var test = await TestDatabase.CreateAsync(provider, postgres);
        var node = "abandoned-" + Guid.NewGuid().ToString("N")[..8];
        var server = await LedgerServer.StartAsync(test, node);
        try
        {
            using var client = new CancellationTokenSource();
            var request = server.Client.PostAsync("/v1/audio/transcriptions", TestAudio.Form(TwoMinutes, "long.wav", ("model", "whisper-1")), client.Token);
            await WaitForBusySlotsAsync(server, 1);
            await client.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
            await WaitForBusySlotsAsync(server, 0);
        }
        finally
        {
            await server.DisposeAsync();
        }

        await using var db = test.Database.Open();
        var row = await db.Usage.SingleAsync(u => u.Node == node);
        Assert.Equal(499, row.StatusCode);
        Assert.Equal("/v1/audio/transcriptions", row.Endpoint);
        Assert.Equal("whisper-tiny.en", row.Model);
        Assert.Equal(120, row.AudioSeconds, 3);
    }

    [Fact]
    public async Task A_stream_dropped_without_a_close_is_recorded_as_499_and_one_closed_properly_as_101()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        var node = "streams-" + Guid.NewGuid().ToString("N")[..8];
        var server = await LedgerServer.StartAsync(test, node, FlushAtOnce);
        try
        {
            var url = new UriBuilder(server.BaseAddress) { Scheme = "ws", Path = "/v1/audio/stream" }.Uri;
            var second = new byte[32_000]; // 1 s of 16 kHz PCM16 silence
            foreach (var drop in new[] { true, false })
            {
                using var socket = new ClientWebSocket();
                socket.Options.SetRequestHeader("Authorization", "Bearer " + server.AdminKey);
                await socket.ConnectAsync(url, CancellationToken.None);
                await socket.SendAsync(second, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);
                if (drop)
                {
                    socket.Abort(); // the connection goes, no close frame
                }
                else
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
                    var buffer = new byte[4096];
                    while ((await socket.ReceiveAsync(buffer, CancellationToken.None)).MessageType != WebSocketMessageType.Close)
                    {
                    }
                }

                await WaitForRowsAsync(test, node, drop ? 1 : 2);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }

        await using var db = test.Database.Open();
        var rows = await db.Usage.Where(u => u.Node == node).OrderBy(u => u.Id).ToListAsync();
        Assert.Equal([499, 101], rows.Select(r => r.StatusCode));
        Assert.All(rows, r => Assert.Equal("/v1/audio/stream", r.Endpoint));
        Assert.All(rows, r => Assert.Equal("whisper-tiny.en", r.Model));
    }

    [Fact]
    public async Task A_classification_abandoned_mid_upload_is_recorded_under_its_model()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        var node = "upload-" + Guid.NewGuid().ToString("N")[..8];
        var server = await LedgerServer.StartAsync(test, node, FlushAtOnce);
        try
        {
            var body = new System.IO.Pipelines.Pipe();
            using var content = new StreamContent(body.Reader.AsStream());
            content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("multipart/form-data; boundary=lockn");
            using var client = new CancellationTokenSource();
            var request = server.Client.PostAsync("/v1/audio/classifications", content, client.Token);
            await body.Writer.WriteAsync("--lockn\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\n\r\n"u8.ToArray());
            await body.Writer.WriteAsync(TwoMinutes.AsMemory(0, 200_000));
            await Task.Delay(500); // the server is reading the body: its request has begun
            await client.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
            await WaitForRowsAsync(test, node, 1);
        }
        finally
        {
            await server.DisposeAsync();
        }

        await using var db = test.Database.Open();
        var row = await db.Usage.SingleAsync(u => u.Node == node);
        Assert.Equal(499, row.StatusCode);
        Assert.Equal("/v1/audio/classifications", row.Endpoint);
        Assert.Equal("yamnet", row.Model);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_request_in_flight_at_a_graceful_stop_is_recorded(Provider provider)
    {
        await using var test = await TestDatabase.CreateAsync(provider, postgres);
        var node = "stopping-" + Guid.NewGuid().ToString("N")[..8];
        var server = await LedgerServer.StartAsync(test, node);
        // A client of its own: the fixture's is disposed when the server stops.
        using var client = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", server.AdminKey);
        Task<HttpResponseMessage> request;
        try
        {
            request = client.PostAsync("/v1/audio/transcriptions", TestAudio.Form(TestAudio.NoiseWav(30), "half-minute.wav", ("model", "whisper-1")));
            await WaitForBusySlotsAsync(server, 1);
        }
        finally
        {
            await server.DisposeAsync();
        }

        // The server finished the request before it stopped, and the ledger has it.
        using var response = await request;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var db = test.Database.Open();
        var row = await db.Usage.SingleAsync(u => u.Node == node);
        Assert.Equal(200, row.StatusCode);
        Assert.Equal(30, row.AudioSeconds, 3);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Two_nodes_on_one_database_each_record_their_own_requests(Provider provider)
    {
        await using var test = await TestDatabase.CreateAsync(provider, postgres);
        var nodes = new[] { "node-a-" + Guid.NewGuid().ToString("N")[..8], "node-b-" + Guid.NewGuid().ToString("N")[..8] };
        var servers = new List<LedgerServer>();
        try
        {
            foreach (var node in nodes)
            {
                servers.Add(await LedgerServer.StartAsync(test, node, new Dictionary<string, string?> { ["Usage:FlushIntervalMilliseconds"] = "10" }));
            }

            // Both write at once: 12 requests to the first node, 7 to the second, interleaved.
            await Task.WhenAll(
                SendAsync(servers[0], 12),
                SendAsync(servers[1], 7));
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }

        await using var db = test.Database.Open();
        var perNode = await db.Usage.GroupBy(u => u.Node).Select(g => new { Node = g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Node, g => g.Count);
        Assert.Equal(new Dictionary<string, int> { [nodes[0]] = 12, [nodes[1]] = 7 }, perNode);
    }

    private static async Task SendAsync(LedgerServer server, int count)
    {
        for (var i = 0; i < count; i++)
        {
            using var response = await server.Client.GetAsync("/v1/models");
            response.EnsureSuccessStatusCode();
        }
    }

    private static async Task WaitForRowsAsync(TestDatabase test, string node, int count)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            await using (var db = test.Database.Open())
            {
                if (await db.Usage.CountAsync(u => u.Node == node) >= count)
                {
                    return;
                }
            }

            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), $"never {count} ledger rows");
            await Task.Delay(20);
        }
    }

    private static async Task WaitForBusySlotsAsync(LockNServerFixture server, int busy)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var models = (await server.ReadinessAsync()).GetProperty("models").EnumerateArray();
            if (models.Single(m => m.GetProperty("default").GetBoolean()).GetProperty("slots").GetProperty("busy").GetInt32() == busy)
            {
                return;
            }

            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), $"never {busy} busy slots");
            await Task.Delay(5);
        }
    }
}
