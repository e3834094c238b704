using System.Diagnostics;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace LockN.Streaming;

// Public (as is StreamClient): the tests' public fixtures hand both out.
/// <summary>An event as the client received it, with the time since the client connected.</summary>
public sealed record ReceivedStreamEvent(string Type, JsonElement Body, TimeSpan At);

/// <summary>
/// A client for GET /v1/audio/stream, used by <c>lockn stream</c>, the tests and the benchmark: connect, configure,
/// send PCM (paced at real time or faster), read events.
/// </summary>
public sealed class StreamClient : IAsyncDisposable
{
    private readonly ClientWebSocket socket;
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly SemaphoreSlim sendLock = new(1, 1);

    private StreamClient(ClientWebSocket socket) => this.socket = socket;

    public WebSocketState State => socket.State;

    public WebSocketCloseStatus? CloseStatus => socket.CloseStatus;

    public string? CloseStatusDescription => socket.CloseStatusDescription;

    /// <summary>Time since connecting; events carry the same clock.</summary>
    public TimeSpan Elapsed => clock.Elapsed;

    /// <param name="server">The server's base address (http://host:port); the WebSocket URL is derived from it.</param>
    public static async Task<StreamClient> ConnectAsync(Uri server, string? apiKey, CancellationToken cancellationToken)
    {
        var builder = new UriBuilder(new Uri(server, "/v1/audio/stream"))
        {
            Scheme = server.Scheme == Uri.UriSchemeHttps ? "wss" : "ws",
        };
        var socket = new ClientWebSocket();
        if (apiKey is not null)
        {
            socket.Options.SetRequestHeader("Authorization", $"Bearer {apiKey}");
        }

        try
        {
            await socket.ConnectAsync(builder.Uri, cancellationToken);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new StreamClient(socket);
    }

    /// <summary>Sends <c>session.update</c> with <paramref name="session"/> serialised as its <c>session</c> object.</summary>
    public Task UpdateSessionAsync(object session, CancellationToken cancellationToken) =>
        SendTextAsync(JsonSerializer.Serialize(new { type = "session.update", session }), cancellationToken);

    public Task CommitAsync(CancellationToken cancellationToken) =>
        SendTextAsync("{\"type\":\"input_audio_buffer.commit\"}", cancellationToken);

    /// <summary>Sends PCM bytes as one binary message.</summary>
    public async Task SendAudioAsync(ReadOnlyMemory<byte> pcm, CancellationToken cancellationToken)
    {
        await sendLock.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(pcm, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
        }
        finally
        {
            sendLock.Release();
        }
    }

    /// <summary>Sends any text message as it is (a JSON event, or anything else to see how the server answers).</summary>
    public async Task SendTextAsync(string message, CancellationToken cancellationToken)
    {
        await sendLock.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
        finally
        {
            sendLock.Release();
        }
    }

    /// <summary>
    /// Sends <paramref name="pcm"/> in <paramref name="chunkMilliseconds"/> pieces, paced at <paramref name="speed"/>
    /// × real time (0 = as fast as the socket allows). <paramref name="bytesPerSecond"/> is rate × channels × sample size.
    /// </summary>
    public async Task StreamAsync(ReadOnlyMemory<byte> pcm, int bytesPerSecond, double speed, CancellationToken cancellationToken, int chunkMilliseconds = 20, int frameBytes = 2)
    {
        var chunk = Math.Max(frameBytes, bytesPerSecond * chunkMilliseconds / 1000 / frameBytes * frameBytes);
        var started = clock.Elapsed;
        for (var offset = 0; offset < pcm.Length; offset += chunk)
        {
            var piece = pcm.Slice(offset, Math.Min(chunk, pcm.Length - offset));
            await SendAudioAsync(piece, cancellationToken);
            if (speed > 0)
            {
                // Pace against the start, not the previous send, so delays do not add up.
                var due = started + TimeSpan.FromSeconds((offset + piece.Length) / (double)bytesPerSecond / speed);
                var wait = due - clock.Elapsed;
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken);
                }
            }
        }
    }

    /// <summary>Events until the server closes the stream (or the connection drops).</summary>
    public async IAsyncEnumerable<ReceivedStreamEvent> ReadEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            WebSocketReceiveResult result;
            try
            {
                result = await socket.ReceiveAsync(buffer, cancellationToken);
            }
            catch (WebSocketException)
            {
                yield break;
            }

            if (result.MessageType == WebSocketMessageType.Close)
            {
                if (socket.State == WebSocketState.CloseReceived)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                }

                yield break;
            }

            message.Write(buffer, 0, result.Count);
            if (!result.EndOfMessage)
            {
                continue;
            }

            var at = clock.Elapsed;
            using var document = JsonDocument.Parse(message.ToArray());
            message.SetLength(0);
            var body = document.RootElement.Clone();
            yield return new ReceivedStreamEvent(body.TryGetProperty("type", out var type) ? type.GetString() ?? "" : "", body, at);
        }
    }

    /// <summary>Ends our side: the server finishes what it has, sends the last events and closes.</summary>
    public async Task CloseOutputAsync(CancellationToken cancellationToken)
    {
        await sendLock.WaitAsync(cancellationToken);
        try
        {
            if (socket.State == WebSocketState.Open)
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", cancellationToken);
            }
        }
        finally
        {
            sendLock.Release();
        }
    }

    /// <summary>Drops the connection without a close handshake, as a crashed client or a lost network would.</summary>
    public void Abort() => socket.Abort();

    public ValueTask DisposeAsync()
    {
        socket.Dispose();
        sendLock.Dispose();
        return ValueTask.CompletedTask;
    }
}
