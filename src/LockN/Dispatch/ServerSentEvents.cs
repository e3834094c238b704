using System.Buffers;

namespace LockN.Dispatch;

/// <summary>
/// Reads a backend's server-sent event stream one complete event at a time (each with its closing blank line), from a
/// pooled buffer that grows only for an event longer than it, up to <see cref="MaxEventBytes"/>.
/// </summary>
internal sealed class ServerSentEvents(Stream upstream) : IDisposable
{
    public const int MaxEventBytes = 16 * 1024 * 1024;

    private byte[] buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
    private int filled;
    private int consumed;
    private int scanned;

    /// <summary>
    /// The next event, valid until the next call; empty at the end of the stream, when <see cref="Remainder"/> holds
    /// any unterminated last bytes.
    /// </summary>
    public async ValueTask<ReadOnlyMemory<byte>> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (FindEventEnd(buffer.AsSpan(0, filled), Math.Max(consumed, scanned)) is var end and > 0)
            {
                var next = buffer.AsMemory(consumed, end - consumed);
                consumed = end;
                scanned = end;
                return next;
            }

            scanned = Math.Max(consumed, filled - 3); // a separator may straddle two reads
            if (consumed > 0)
            {
                buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                filled -= consumed;
                scanned -= consumed;
                consumed = 0;
            }

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
                Remainder = buffer.AsMemory(consumed, filled - consumed);
                consumed = filled;
                return ReadOnlyMemory<byte>.Empty;
            }

            filled += read;
        }
    }

    public ReadOnlyMemory<byte> Remainder { get; private set; }

    /// <summary>
    /// The field name (<c>data</c>, or llama-server's <c>error</c>) and payload of an event's first data-bearing line;
    /// multi-line data is rare in OpenAI streams and kept whole.
    /// </summary>
    public static ReadOnlySpan<byte> DataOf(ReadOnlySpan<byte> sse, out string? field) =>
        DataRange(sse, out field) is { } range ? sse.Slice(range.Start, range.Length) : default;

    /// <summary>Where <see cref="DataOf"/>'s payload lies in the event, for parsing it in place.</summary>
    public static (int Start, int Length)? DataRange(ReadOnlySpan<byte> sse, out string? field)
    {
        if (LineValue(sse, "data:"u8) is { } data)
        {
            field = "data";
            return data;
        }

        var error = LineValue(sse, "error:"u8);
        field = error is null ? null : "error";
        return error;
    }

    private static (int Start, int Length)? LineValue(ReadOnlySpan<byte> sse, ReadOnlySpan<byte> field)
    {
        var at = sse.IndexOf(field);
        while (at > 0 && sse[at - 1] != (byte)'\n')
        {
            var next = sse[(at + 1)..].IndexOf(field);
            at = next < 0 ? -1 : at + 1 + next;
        }

        if (at < 0)
        {
            return null;
        }

        var start = at + field.Length;
        var end = sse[start..].IndexOf((byte)'\n');
        var length = end < 0 ? sse.Length - start : end;
        while (length > 0 && sse[start] == (byte)' ')
        {
            start++;
            length--;
        }

        while (length > 0 && sse[start + length - 1] is (byte)' ' or (byte)'\r')
        {
            length--;
        }

        return (start, length);
    }

    public void Dispose()
    {
        ArrayPool<byte>.Shared.Return(buffer);
        buffer = [];
    }

    /// <summary>The end (after the blank line) of the first complete event at or after <paramref name="from"/>, or -1.</summary>
    private static int FindEventEnd(ReadOnlySpan<byte> data, int from)
    {
        if (from >= data.Length)
        {
            return -1;
        }

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
}
