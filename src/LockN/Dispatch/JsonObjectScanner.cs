using System.Buffers;
using System.Text;
using System.Text.Json;

namespace LockN.Dispatch;

/// <summary>A top-level property of interest: where its value lies in the body, and the value itself.</summary>
internal sealed record ScannedValue(long Start, long Length, byte[]? Bytes)
{
    /// <summary>False when the value was longer than the scanner keeps (its position is still known).</summary>
    public bool Captured => Bytes is not null;
}

/// <summary>
/// Reads a JSON object as it streams past, chunk by chunk, and remembers only the top-level properties it was
/// asked for (e.g. <c>model</c>, <c>stream</c>) with their byte positions. Everything else (tens of MB of base64
/// images) is skipped without being held, and without a string ever being built. It checks the structure it must
/// walk (strings, nesting, one object); the backend validates the rest.
/// </summary>
internal sealed class JsonObjectScanner(IReadOnlyCollection<string> wanted, int maxValueBytes = 64 * 1024)
{
    private enum State { BeforeObject, KeyOrEnd, Key, Colon, ValueStart, StringValue, NestedValue, PrimitiveValue, AfterValue, Done, Failed }

    private readonly Dictionary<string, ScannedValue> values = new(StringComparer.Ordinal);
    private readonly ArrayBufferWriter<byte> key = new(32);
    private readonly ArrayBufferWriter<byte> capture = new(256);
    private State state = State.BeforeObject;
    private long offset;
    private long valueStart;
    private int depth;
    private bool escaped;
    private bool nestedInString;
    private bool keyEscaped;
    private bool capturing;
    private bool overflowed;
    private string? currentKey;
    private bool expectKey;

    public bool IsComplete => state == State.Done;

    /// <summary>Why the body is not a JSON object, once it is known.</summary>
    public string? Error { get; private set; }

    /// <summary>Position of the object's closing brace (to insert properties before it).</summary>
    public long ClosingBrace { get; private set; } = -1;

    public int PropertyCount { get; private set; }

    public IReadOnlyDictionary<string, ScannedValue> Values => values;

    public void Feed(ReadOnlySpan<byte> data)
    {
        var i = 0;
        while (i < data.Length && state is not State.Failed)
        {
            var b = data[i];
            switch (state)
            {
                case State.BeforeObject:
                    if (b == '{')
                    {
                        state = State.KeyOrEnd;
                    }
                    else if (!IsWhitespace(b) && !(offset + i < 3 && (b is 0xEF or 0xBB or 0xBF)))
                    {
                        Fail("The request body must be a JSON object.");
                    }

                    i++;
                    break;

                case State.KeyOrEnd:
                    if (b == '"')
                    {
                        key.ResetWrittenCount();
                        keyEscaped = false;
                        escaped = false;
                        state = State.Key;
                    }
                    else if (b == '}' && !expectKey)
                    {
                        Finish(offset + i);
                    }
                    else if (!IsWhitespace(b))
                    {
                        Fail("The request body is not valid JSON: a property name was expected.");
                    }

                    i++;
                    break;

                case State.Key:
                    if (escaped)
                    {
                        escaped = false;
                    }
                    else if (b == '\\')
                    {
                        escaped = keyEscaped = true;
                    }
                    else if (b == '"')
                    {
                        currentKey = DecodeKey(key.WrittenSpan, keyEscaped);
                        state = State.Colon;
                        i++;
                        break;
                    }

                    if (key.WrittenCount < 256)
                    {
                        key.Write([b]);
                    }

                    i++;
                    break;

                case State.Colon:
                    if (b == ':')
                    {
                        state = State.ValueStart;
                    }
                    else if (!IsWhitespace(b))
                    {
                        Fail("The request body is not valid JSON: ':' was expected after a property name.");
                    }

                    i++;
                    break;

                case State.ValueStart:
                    if (IsWhitespace(b))
                    {
                        i++;
                        break;
                    }

                    valueStart = offset + i;
                    capturing = currentKey is not null && wanted.Contains(currentKey);
                    overflowed = false;
                    capture.ResetWrittenCount();
                    escaped = false;
                    if (b == '"')
                    {
                        state = State.StringValue;
                        Capture(data.Slice(i, 1));
                        i++;
                    }
                    else if (b is (byte)'{' or (byte)'[')
                    {
                        state = State.NestedValue;
                        depth = 1;
                        nestedInString = false;
                        Capture(data.Slice(i, 1));
                        i++;
                    }
                    else if (b is (byte)'}' or (byte)',' or (byte)']' or (byte)':')
                    {
                        Fail("The request body is not valid JSON: a value was expected.");
                    }
                    else
                    {
                        state = State.PrimitiveValue; // true, false, null or a number: read in the next state
                    }

                    break;

                case State.StringValue:
                    i = ScanString(data, i, out var closed);
                    if (closed)
                    {
                        EndValue(offset + i);
                    }

                    break;

                case State.NestedValue:
                    i = ScanNested(data, i);
                    break;

                case State.PrimitiveValue:
                    if (IsWhitespace(b) || b is (byte)',' or (byte)'}')
                    {
                        EndValue(offset + i); // the delimiter is read again in AfterValue
                    }
                    else
                    {
                        Capture(data.Slice(i, 1));
                        i++;
                    }

                    break;

                case State.AfterValue:
                    if (b == ',')
                    {
                        state = State.KeyOrEnd;
                        expectKey = true;
                    }
                    else if (b == '}')
                    {
                        Finish(offset + i);
                    }
                    else if (!IsWhitespace(b))
                    {
                        Fail("The request body is not valid JSON: ',' or '}' was expected after a value.");
                    }

                    i++;
                    break;

                case State.Done:
                    if (!IsWhitespace(b))
                    {
                        Fail("The request body has data after its JSON object.");
                    }

                    i++;
                    break;
            }

            if (state == State.Key)
            {
                expectKey = false;
            }
        }

        offset += data.Length;
    }

    /// <summary>Call at the end of the body: a body that stopped inside the object is an error.</summary>
    public void Complete()
    {
        if (state is State.PrimitiveValue)
        {
            Fail("The request body is not a complete JSON object.");
        }
        else if (state is not (State.Done or State.Failed))
        {
            Fail(offset == 0 ? "The request body is empty; a JSON object was expected." : "The request body is not a complete JSON object.");
        }
    }

    private int ScanString(ReadOnlySpan<byte> data, int i, out bool closed)
    {
        var end = ScanStringInner(data, i, out closed);
        Capture(data[i..end]);
        return end;
    }

    private int ScanNested(ReadOnlySpan<byte> data, int i)
    {
        var start = i;
        while (i < data.Length)
        {
            if (nestedInString)
            {
                var before = i;
                i = ScanStringInner(data, i, out var closed);
                if (closed)
                {
                    nestedInString = false;
                }

                if (i == before)
                {
                    break;
                }

                continue;
            }

            var b = data[i++];
            if (b == '"')
            {
                nestedInString = true;
                escaped = false;
            }
            else if (b is (byte)'{' or (byte)'[')
            {
                depth++;
            }
            else if (b is (byte)'}' or (byte)']')
            {
                if (--depth == 0)
                {
                    Capture(data[start..i]);
                    EndValue(offset + i);
                    return i;
                }
            }
        }

        Capture(data[start..i]);
        return i;
    }

    /// <summary>Moves past string content to just after its closing quote (closed) or to the end of the chunk.</summary>
    private int ScanStringInner(ReadOnlySpan<byte> data, int i, out bool closed)
    {
        closed = false;
        while (i < data.Length)
        {
            if (escaped)
            {
                escaped = false;
                i++;
                continue;
            }

            // Vectorised skip over the bulk of a string (base64 has neither quotes nor backslashes).
            var next = data[i..].IndexOfAny((byte)'"', (byte)'\\');
            if (next < 0)
            {
                return data.Length;
            }

            i += next;
            if (data[i] == '\\')
            {
                escaped = true;
                i++;
                continue;
            }

            closed = true;
            return i + 1;
        }

        return i;
    }

    private void Capture(ReadOnlySpan<byte> bytes)
    {
        if (!capturing || overflowed)
        {
            return;
        }

        if (capture.WrittenCount + bytes.Length > maxValueBytes)
        {
            overflowed = true;
            return;
        }

        capture.Write(bytes);
    }

    private void EndValue(long end)
    {
        if (capturing && currentKey is not null)
        {
            values[currentKey] = new ScannedValue(valueStart, end - valueStart, overflowed ? null : capture.WrittenSpan.ToArray());
        }

        capturing = false;
        PropertyCount++;
        state = State.AfterValue;
    }

    private void Finish(long closingBrace)
    {
        ClosingBrace = closingBrace;
        state = State.Done;
    }

    private void Fail(string message)
    {
        Error ??= message;
        state = State.Failed;
    }

    private static string? DecodeKey(ReadOnlySpan<byte> raw, bool hasEscapes)
    {
        if (!hasEscapes)
        {
            return Encoding.UTF8.GetString(raw);
        }

        try
        {
            var quoted = new byte[raw.Length + 2];
            quoted[0] = quoted[^1] = (byte)'"';
            raw.CopyTo(quoted.AsSpan(1));
            return JsonSerializer.Deserialize<string>(quoted);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r';
}
