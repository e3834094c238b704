using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using LockN.Http;

namespace LockN.Streaming;

/// <summary>
/// Sends a stream's events one at a time (each with the next <c>event_id</c>) and its close frame. Once the server
/// has begun to close, events are dropped, except while draining after the client closed its side.
/// </summary>
internal sealed class StreamEventWriter(WebSocket socket, ConnectionWatchdog watchdog, TimeProvider time)
{
    private readonly SemaphoreSlim sendLock = new(1, 1);
    private long eventCounter;
    private volatile bool closing;

    public async Task SendAsync(StreamEvent message, CancellationToken cancellationToken)
    {
        message.EventId = "event_" + Interlocked.Increment(ref eventCounter).ToString(CultureInfo.InvariantCulture);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(message, message.GetType(), LockNJson.Context);
        await sendLock.WaitAsync(cancellationToken);
        try
        {
            if (closing && socket.State != WebSocketState.CloseReceived)
            {
                return;
            }

            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
                watchdog.Sent();
            }
        }
        finally
        {
            sendLock.Release();
        }
    }

    /// <summary>
    /// Sends the close frame, giving up after 2 s on a client that does not read. False when the connection was gone
    /// before the frame could go out.
    /// </summary>
    public async Task<bool> CloseAsync(WebSocketCloseStatus status, string reason)
    {
        await sendLock.WaitAsync(CancellationToken.None);
        try
        {
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                closing = true;
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2), time);
                await socket.CloseOutputAsync(status, reason, timeout.Token);
                return true;
            }

            return socket.State is not WebSocketState.Aborted;
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            return false;
        }
        finally
        {
            sendLock.Release();
        }
    }

    /// <summary>The session is over: nothing more goes out.</summary>
    public void StopSending() => closing = true;
}
