using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;

namespace LockN.Streaming;

/// <summary>
/// The <c>/v1/audio/stream</c> protocol on one WebSocket (docs/streaming.md), as an adapter over the stream's
/// <see cref="AudioPipeline"/>: client messages become pipeline commands, pipeline events become the protocol's
/// events, and the connection gets keepalives, an idle timeout and its close codes. Audio, voice detection,
/// transcription, classification and the backlog limit are the pipeline's.
/// </summary>
internal sealed partial class StreamSession
{
    // How long the server waits for the client to answer its close before it lets go of the connection.
    private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(2);

    private readonly WebSocket socket;
    private readonly AudioPipeline pipeline;
    private readonly StreamingOptions options;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private readonly string id;
    private readonly ConnectionWatchdog watchdog;
    private readonly StreamEventWriter writer;

    public StreamSession(WebSocket socket, AudioPipeline pipeline, StreamingOptions options, TimeProvider time, ILogger logger)
    {
        this.socket = socket;
        this.pipeline = pipeline;
        this.options = options;
        this.time = time;
        this.logger = logger;
        id = "sess_" + pipeline.Id;
        watchdog = new ConnectionWatchdog(TimeSpan.FromSeconds(options.IdleTimeoutSeconds), TimeSpan.FromSeconds(options.KeepAliveSeconds), time);
        writer = new StreamEventWriter(socket, watchdog, time);
    }

    /// <summary>Whether the session ended because the client went away (the connection dropped) rather than by a close.</summary>
    public bool ClientVanished { get; private set; }

    public async Task RunAsync(CancellationToken aborted)
    {
        using var session = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var token = session.Token;
        Task events = Task.CompletedTask, watching = Task.CompletedTask;
        try
        {
            await writer.SendAsync(new SessionEvent(SessionEvent.Created, Describe()), token);
            events = Task.Run(() => SendPipelineEventsAsync(token), CancellationToken.None);
            watching = Task.Run(() => WatchAsync(session), CancellationToken.None);
            switch (await ReceiveAsync(token))
            {
                case ReceiveEnd.ClientClosed:
                    // The client closed its side: finish what it sent, then close ours.
                    pipeline.Complete();
                    await events;
                    ClientVanished = !await writer.CloseAsync(WebSocketCloseStatus.NormalClosure, "session ended");
                    break;
                case ReceiveEnd.Overrun:
                    // The events up to the backlog's go out, then its error and the close.
                    await events;
                    await LingerAsync(token);
                    break;
                case ReceiveEnd.MessageTooLarge:
                    await LingerAsync(token);
                    break;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException)
        {
            // The client went away or the session was ended: nothing left to tell anyone.
            ClientVanished = ex is WebSocketException or IOException || aborted.IsCancellationRequested;
        }
        finally
        {
            writer.StopSending();
            await session.CancelAsync();
            await pipeline.StopAsync();
            await Task.WhenAll(Quietly(events), Quietly(watching));
            watchdog.Dispose();
            LogEnded(logger, id, pipeline.AudioSeconds);
        }
    }

    private enum ReceiveEnd
    {
        ClientClosed,
        MessageTooLarge,
        Overrun,
    }

    /// <summary>Reads messages until the client closes or a limit ends the session.</summary>
    private async Task<ReceiveEnd> ReceiveAsync(CancellationToken token)
    {
        var rented = ArrayPool<byte>.Shared.Rent(64 * 1024);
        var text = new ArrayBufferWriter<byte>();
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(rented.AsMemory(), token);
                watchdog.Received();
                switch (result.MessageType)
                {
                    case WebSocketMessageType.Close:
                        return ReceiveEnd.ClientClosed;
                    case WebSocketMessageType.Binary:
                        pipeline.Append(rented.AsSpan(0, result.Count));
                        break;
                    case WebSocketMessageType.Text:
                        if (text.WrittenCount + result.Count > options.MaxMessageBytes)
                        {
                            await FailAsync(StreamError.Invalid($"A message may be at most {options.MaxMessageBytes} bytes.", code: "message_too_large"), WebSocketCloseStatus.MessageTooBig, token);
                            return ReceiveEnd.MessageTooLarge;
                        }

                        text.Write(rented.AsSpan(0, result.Count));
                        if (result.EndOfMessage)
                        {
                            await OnTextAsync(text.WrittenMemory, token);
                            text.ResetWrittenCount();
                        }

                        break;
                }

                if (pipeline.Overrun)
                {
                    return ReceiveEnd.Overrun;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>After the server's close: drops what the client still sends until it answers the close, for at most <see cref="CloseGrace"/>.</summary>
    private async Task LingerAsync(CancellationToken token)
    {
        using var grace = new CancellationTokenSource(CloseGrace, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(token, grace.Token);
        var rented = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while ((await socket.ReceiveAsync(rented.AsMemory(), linked.Token)).MessageType != WebSocketMessageType.Close)
            {
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async Task OnTextAsync(ReadOnlyMemory<byte> message, CancellationToken token)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(message);
        }
        catch (JsonException ex)
        {
            await SendErrorAsync(StreamError.Invalid($"The message is not valid JSON: {ex.Message}", code: "invalid_json"), token);
            return;
        }

        using (document)
        {
            var root = document.RootElement;
            var type = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            switch (type)
            {
                case "session.update":
                    await UpdateSessionAsync(root.TryGetProperty("session", out var s) ? s : default, token);
                    break;
                case "input_audio_buffer.append":
                    if (AppendBase64Audio(root) is { } error)
                    {
                        await SendErrorAsync(error, token);
                    }

                    break;
                case "input_audio_buffer.commit":
                    pipeline.Commit();
                    break;
                case null:
                    await SendErrorAsync(StreamError.Invalid("Every message needs a string 'type'.", "type", "invalid_event"), token);
                    break;
                default:
                    await SendErrorAsync(StreamError.Invalid($"Unknown event type '{type}'. Clients send session.update, input_audio_buffer.append and input_audio_buffer.commit.", "type", "unknown_event"), token);
                    break;
            }
        }
    }

    /// <summary>Hands the base64 audio of an <c>append</c> to the pipeline, or says what is wrong with it.</summary>
    private StreamError? AppendBase64Audio(JsonElement append)
    {
        if (!append.TryGetProperty("audio", out var audio) || audio.ValueKind != JsonValueKind.String)
        {
            return StreamError.Invalid("'audio' must be a base64 string of PCM bytes.", "audio", "invalid_audio");
        }

        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(audio.GetString()!);
        }
        catch (FormatException)
        {
            return StreamError.Invalid("'audio' is not valid base64.", "audio", "invalid_audio");
        }

        pipeline.Append(bytes);
        return null;
    }

    private async Task UpdateSessionAsync(JsonElement update, CancellationToken token)
    {
        var (next, error) = SessionUpdate.Apply(pipeline.Settings, update);
        if (error is null && pipeline.Apply(next!) is { } refused)
        {
            error = StreamEventMapping.RefusedSetting(refused);
        }

        if (error is not null)
        {
            await SendErrorAsync(error, token);
            return;
        }

        await writer.SendAsync(new SessionEvent(SessionEvent.Updated, Describe()), token);
    }

    private async Task SendPipelineEventsAsync(CancellationToken token)
    {
        await foreach (var happened in pipeline.Events.ReadAllAsync(token))
        {
            if (happened is PipelineEvent.BacklogExceeded overrun)
            {
                // The receive loop has stopped reading; this ends the session.
                await FailAsync(StreamEventMapping.BacklogExceeded(overrun.Limit), WebSocketCloseStatus.PolicyViolation, token);
                return;
            }

            if (StreamEventMapping.ToWire(happened) is { } message)
            {
                await writer.SendAsync(message, token);
            }
        }
    }

    /// <summary>Sends keepalives when the stream is quiet and ends a stream whose client sends nothing.</summary>
    private async Task WatchAsync(CancellationTokenSource session)
    {
        var token = session.Token;
        while (await watchdog.WaitAsync(token) is var alarm && alarm != ConnectionAlarm.None)
        {
            if (alarm == ConnectionAlarm.KeepAlive)
            {
                await writer.SendAsync(new KeepAlive(), token);
                continue;
            }

            await FailAsync(StreamError.Invalid($"Nothing was received for {options.IdleTimeoutSeconds:0.#} s; the stream is closed.", code: "idle_timeout"), WebSocketCloseStatus.NormalClosure, token);
            await Task.Delay(CloseGrace, time, token); // let the client answer the close, then let go
            await session.CancelAsync();
            return;
        }
    }

    private Task SendErrorAsync(StreamError error, CancellationToken token) => writer.SendAsync(new ErrorEvent(error), token);

    /// <summary>Sends an error event, then closes the stream with <paramref name="status"/>.</summary>
    private async Task FailAsync(StreamError error, WebSocketCloseStatus status, CancellationToken token)
    {
        LogClosed(logger, id, error.Code);
        await SendErrorAsync(error, token);
        await writer.CloseAsync(status, error.Code);
    }

    private SessionDescription Describe() => new(id, "transcription_session", pipeline.Settings);

    private static async Task Quietly(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException or ChannelClosedException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stream {SessionId} ended after {AudioSeconds:0.0} s of audio")]
    private static partial void LogEnded(ILogger logger, string sessionId, double audioSeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stream {SessionId} closed by the server: {Code}")]
    private static partial void LogClosed(ILogger logger, string sessionId, string code);
}
