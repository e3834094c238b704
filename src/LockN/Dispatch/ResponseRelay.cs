using System.Buffers;
using System.Text.Json;
using LockN.Http;

namespace LockN.Dispatch;

/// <summary>
/// Carries a backend's answer to the client and reads the token usage on the way: a plain JSON answer is copied as it
/// arrives; an event stream goes out event by event to a streaming client, or is assembled into the plain answer
/// (<see cref="StreamedAnswer"/>) for one that did not ask to stream. Every event is progress for the stall watchdog.
/// </summary>
internal static class ResponseRelay
{
    /// <summary>A plain (non-streamed) answer: copied chunk by chunk, never held whole.</summary>
    public static async Task<TokenUsage?> RelayBodyAsync(Stream upstream, Stream client, CancellationToken cancellationToken)
    {
        var scanner = new JsonObjectScanner(["usage"]);
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await upstream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                scanner.Feed(buffer.AsSpan(0, read));
                await client.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }

            await client.FlushAsync(cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return scanner.Values.TryGetValue("usage", out var usage) && usage.Bytes is { } bytes ? TokenUsage.From(bytes) : null;
    }

    /// <summary>
    /// A server-sent event stream to a streaming client: each event is passed on (and flushed) as soon as it is complete.
    /// The usage-only chunk LockN asked for is dropped unless the client asked for it too.
    /// </summary>
    public static async Task<TokenUsage?> RelayEventsAsync(Stream upstream, Stream client, bool clientWantsUsage, string backendName, GenerationProgress progress, CancellationToken cancellationToken)
    {
        TokenUsage? usage = null;
        using var events = new ServerSentEvents(upstream);
        while (true)
        {
            var next = await events.ReadAsync(cancellationToken);
            if (next.IsEmpty)
            {
                if (!events.Remainder.IsEmpty)
                {
                    await client.WriteAsync(events.Remainder, cancellationToken); // an unterminated last event, as sent
                }

                await client.FlushAsync(cancellationToken);
                return usage;
            }

            progress.Event();
            if (ErrorEvent(next.Span) is { } failed)
            {
                // llama-server's "error: {...}" line, which OpenAI clients do not read: the same error as a data event in OpenAI's shape.
                await EventStream.WriteAsync(client, BackendError(failed, backendName).ToBody(), LockNJson.Context.OpenAiErrorBody, cancellationToken);
                continue;
            }

            var (keep, eventUsage) = Inspect(next.Span, clientWantsUsage);
            usage = eventUsage ?? usage;
            if (keep)
            {
                await client.WriteAsync(next, cancellationToken);
                await client.FlushAsync(cancellationToken);
            }
        }
    }

    /// <summary>An event stream read to its end and assembled into the plain answer a non-streaming client expects.</summary>
    public static async Task<StreamedAnswer> AssembleAsync(Stream upstream, bool chat, GenerationProgress progress, CancellationToken cancellationToken)
    {
        var answer = new StreamedAnswer(chat);
        using var events = new ServerSentEvents(upstream);
        while (true)
        {
            var next = await events.ReadAsync(cancellationToken);
            if (next.IsEmpty)
            {
                if (!events.Remainder.IsEmpty)
                {
                    answer.Add(events.Remainder);
                }

                return answer;
            }

            progress.Event();
            answer.Add(next);
        }
    }

    /// <summary>
    /// An error the backend reported inside its stream (llama-server's <c>error: {"error":{"code","message","type"}}</c>),
    /// in LockN's words with the backend's: its status (500 when it gives none) and message.
    /// </summary>
    public static ApiError BackendError(JsonElement error, string backendName)
    {
        var status = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var code) && code.TryGetInt32(out var number) && number is >= 400 and < 600 ? number : 500;
        var message = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        return new ApiError(status, $"Backend '{backendName}' failed: {message ?? "no reason given"}", status < 500 ? "invalid_request_error" : "server_error", null, "backend_error");
    }

    private static JsonElement? ErrorEvent(ReadOnlySpan<byte> sse)
    {
        if (!sse.StartsWith("error:"u8))
        {
            return null;
        }

        try
        {
            using var json = JsonDocument.Parse(ServerSentEvents.DataOf(sse, out _).ToArray());
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("error", out var inner) ? inner.Clone() : json.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static (bool Keep, TokenUsage? Usage) Inspect(ReadOnlySpan<byte> sse, bool clientWantsUsage)
    {
        if (sse.IndexOf("\"usage\""u8) < 0)
        {
            return (true, null); // the common case: a token chunk, passed on without parsing
        }

        var data = ServerSentEvents.DataOf(sse, out _);
        if (data.IsEmpty || data.SequenceEqual("[DONE]"u8))
        {
            return (true, null);
        }

        try
        {
            using var json = JsonDocument.Parse(data.ToArray());
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("usage", out var usageElement) || TokenUsage.From(usageElement) is not { } usage)
            {
                return (true, null);
            }

            var usageOnly = root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() == 0;
            return (clientWantsUsage || !usageOnly, usage);
        }
        catch (JsonException)
        {
            return (true, null);
        }
    }
}
