using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;
using LockN.Streaming;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace LockN.Tests.Streaming;

/// <summary>The stream protocol's time rules on a fake clock: a real session and pipeline over a loopback WebSocket.</summary>
[Collection(typeof(StreamingPipelineCollection))]
public class StreamSessionClockTests(StreamingServerFixture server)
{
    [Fact]
    public async Task A_quiet_stream_gets_keepalives_and_is_closed_at_the_idle_timeout_of_the_injected_clock()
    {
        var clock = new FakeTimeProvider();
        var options = new StreamingOptions(); // keepalive after 15 s, idle timeout after 60 s
        var (serverSide, client) = await ConnectLoopbackAsync();
        using var _ = serverSide;
        using var __ = client;
        await using var pipeline = server.Services.GetRequiredService<AudioPipelineFactory>().Create(CancellationToken.None);
        var session = new StreamSession(serverSide, pipeline, options, clock, NullLogger.Instance);
        var running = session.RunAsync(CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        Assert.Equal("session.created", (await ReceiveAsync(client, timeout.Token)).GetProperty("type").GetString());
        for (var quiet = options.KeepAliveSeconds; quiet < options.IdleTimeoutSeconds; quiet += options.KeepAliveSeconds)
        {
            clock.Advance(TimeSpan.FromSeconds(options.KeepAliveSeconds));
            Assert.Equal("keepalive", (await ReceiveAsync(client, timeout.Token)).GetProperty("type").GetString());
        }

        clock.Advance(TimeSpan.FromSeconds(options.KeepAliveSeconds)); // 60 s of fake time with nothing received
        var error = await ReceiveAsync(client, timeout.Token);
        Assert.Equal("idle_timeout", error.GetProperty("error").GetProperty("code").GetString());
        await Assert.ThrowsAsync<WebSocketClosed>(() => ReceiveAsync(client, timeout.Token));
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);

        await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
        await running.WaitAsync(timeout.Token);
    }

    private static async Task<(WebSocket Server, WebSocket Client)> ConnectLoopbackAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var client = new TcpClient();
            var connecting = client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
            var accepted = await listener.AcceptTcpClientAsync();
            await connecting;
            return (
                WebSocket.CreateFromStream(accepted.GetStream(), new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero }),
                WebSocket.CreateFromStream(client.GetStream(), new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero }));
        }
        finally
        {
            listener.Stop();
        }
    }

    private static async Task<JsonElement> ReceiveAsync(WebSocket client, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var result = await client.ReceiveAsync(buffer, cancellationToken);
        if (result.MessageType == WebSocketMessageType.Close)
        {
            throw new WebSocketClosed();
        }

        Assert.True(result.EndOfMessage);
        return JsonDocument.Parse(buffer.AsMemory(0, result.Count)).RootElement.Clone();
    }

    private sealed class WebSocketClosed : Exception;
}
