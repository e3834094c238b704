using System.Buffers;
using System.Text.Json;

namespace LockN.Dispatch;

/// <summary>
/// Copies a backend's response body to the client as it arrives and reads the token usage on the way: from the
/// top-level <c>usage</c> of a JSON answer, or from the usage chunk of a server-sent event stream.
/// </summary>
internal static class ResponseRelay
{
    private const int MaxEventBytes = 16 * 1024 * 1024;

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
    /// A server-sent event stream: each event goes to the client (and is flushed) as soon as it is complete.
    /// The usage-only chunk LockN asked for is dropped unless the client asked for it too.
    /// </summary>
    public static async Task<TokenUsage?> RelayEventsAsync(Stream upstream, Stream client, bool clientWantsUsage, CancellationToken cancellationToken)
    {
        TokenUsage? usage = null;
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var filled = 0;
        try
        {
            while (true)
            {
                if (filled == buffer.Length)
                {
                    if (buffer.Length >= MaxEventBytes)
                    {
                        throw new InvalidDataException($"The backend sent an event longer than {MaxEventBytes / (1024 * 1024)} MB.");
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, filled).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var read = await upstream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
                if (read == 0)
                {
                    if (filled > 0)
                    {
                        await client.WriteAsync(buffer.AsMemory(0, filled), cancellationToken); // an unterminated last event, as sent
                    }

                    await client.FlushAsync(cancellationToken);
                    return usage;
                }

                var scanFrom = Math.Max(0, filled - 3); // a separator may straddle two reads
                filled += read;
                var consumed = 0;
                while (FindEventEnd(buffer.AsSpan(0, filled), Math.Max(consumed, scanFrom)) is var end and > 0)
                {
                    var eventBytes = buffer.AsMemory(consumed, end - consumed);
                    var (keep, eventUsage) = Inspect(eventBytes.Span, clientWantsUsage);
                    usage = eventUsage ?? usage;
                    if (keep)
                    {
                        await client.WriteAsync(eventBytes, cancellationToken);
                    }

                    consumed = end;
                }

                await client.FlushAsync(cancellationToken);
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The end (after the blank line) of the first complete event at or after <paramref name="from"/>, or -1.</summary>
    private static int FindEventEnd(ReadOnlySpan<byte> data, int from)
    {
        var lf = data[from..].IndexOf("\n\n"u8);
        var crlf = data[from..].IndexOf("\n\r\n"u8);
        return (lf, crlf) switch
        {
            ( < 0, < 0) => -1,
            ( >= 0, < 0) => from + lf + 2,
            ( < 0, >= 0) => from + crlf + 3,
            _ => lf <= crlf ? from + lf + 2 : from + crlf + 3,
        };
    }

    private static (bool Keep, TokenUsage? Usage) Inspect(ReadOnlySpan<byte> sse, bool clientWantsUsage)
    {
        if (sse.IndexOf("\"usage\""u8) < 0)
        {
            return (true, null); // the common case: a token chunk, passed on without parsing
        }

        var data = DataOf(sse);
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

    // The payload of the event's data line ("data: {...}"); multi-line data is rare in OpenAI streams and kept whole.
    private static ReadOnlySpan<byte> DataOf(ReadOnlySpan<byte> sse)
    {
        var start = sse.IndexOf("data:"u8);
        if (start < 0)
        {
            return default;
        }

        var data = sse[(start + 5)..];
        var end = data.IndexOf((byte)'\n');
        data = end < 0 ? data : data[..end];
        return data.Trim(" \r"u8);
    }
}
