using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace LockN.Dispatch;

/// <summary>A top-level property of interest: where its value lies in the body, and the value itself.</summary>
public sealed record ScannedValue(long Start, long Length, byte[]? Bytes)
{
    /// <summary>False when the value was longer than the scanner keeps (its position is still known).</summary>
    public bool Captured => Bytes is not null;
}

/// <summary>What is wrong with a body the scanner refused.</summary>
internal enum JsonScanProblem
{
    /// <summary>Not one well-formed JSON object (syntax, strings, escapes, numbers, data after it, cut off).</summary>
    InvalidJson,

    /// <summary>Objects and arrays nested deeper than the scanner's limit.</summary>
    TooDeep,

    /// <summary>A string holds bytes that are not UTF-8 (overlong, surrogate, out of range or cut-off sequences).</summary>
    InvalidUtf8,
}

/// <summary>Why and where (byte offset in the body) the scanner refused a body.</summary>
internal sealed record JsonScanFailure(JsonScanProblem Problem, long Offset, string Message);

/// <summary>
/// Reads a JSON object as it streams past, chunk by chunk, and remembers only the top-level properties it was
/// asked for (e.g. <c>model</c>, <c>stream</c>) with their byte positions. On the way it validates the whole body
/// as <see cref="Utf8JsonReader"/> would (with its strings transcoded): one object and only whitespace after it,
/// the JSON grammar of every value, string escapes and surrogate pairs, UTF-8 inside strings, and at most
/// <c>maxDepth</c> nested objects and arrays. Nothing else is held: memory is one bit per nesting level, not the
/// body (tens of MB of base64 images are skipped with a vectorised search, without a string ever being built).
/// </summary>
internal sealed class JsonObjectScanner
{
    public const int DefaultMaxDepth = 64;

    private const int MaxKeyBytes = 256;

    // Bytes that end the fast skip through a string: its end, an escape, a control character, non-ASCII.
    private static readonly SearchValues<byte> StringStops = SearchValues.Create(
        [.. Enumerable.Range(0, 0x20).Select(b => (byte)b), (byte)'"', (byte)'\\', .. Enumerable.Range(0x80, 0x80).Select(b => (byte)b)]);

    private static readonly byte[] True = "true"u8.ToArray();
    private static readonly byte[] False = "false"u8.ToArray();
    private static readonly byte[] Null = "null"u8.ToArray();

    private enum State : byte
    {
        BeforeObject,
        ByteOrderMark,
        FirstKeyOrEnd,
        Key,
        Colon,
        Value,
        FirstValueOrEnd,
        AfterValue,
        String,
        Utf8Continuation,
        Escape,
        UnicodeEscape,
        LowSurrogateBackslash,
        LowSurrogateU,
        Number,
        Literal,
        Done,
        Failed,
    }

    private enum NumberPart : byte { AfterMinus, Zero, Integer, AfterDot, Fraction, AfterExponent, AfterExponentSign, Exponent }

    private readonly (string Name, byte[] Utf8)[] wanted;
    private readonly int maxValueBytes;
    private readonly int maxDepth;
    private readonly ulong[] objectLevels; // one bit per open container: 1 for an object, 0 for an array
    private readonly Dictionary<string, ScannedValue> values = new(StringComparer.Ordinal);
    private readonly ArrayBufferWriter<byte> key = new(32);
    private readonly ArrayBufferWriter<byte> capture = new(256);
    private State state = State.BeforeObject;
    private NumberPart number;
    private byte[] literal = True;
    private int literalIndex;
    private long offset;
    private int depth;

    // The string being read: a property name or a value, and a multi-byte character or escape that may span chunks.
    private bool inKey;
    private int utf8Remaining;
    private byte utf8Low;
    private byte utf8High;
    private int hexRemaining;
    private int hexValue;
    private bool expectLowSurrogate;

    // A top-level property name or value being kept; captureFrom is where it continues in the current chunk.
    private bool capturingKey;
    private bool keyEscaped;
    private bool keyTooLong;
    private bool capturingValue;
    private bool overflowed;
    private int captureFrom;
    private long valueStart;
    private string? currentKey;

    public JsonObjectScanner(IReadOnlyCollection<string> wanted, int maxValueBytes = 64 * 1024, int maxDepth = DefaultMaxDepth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDepth, 1);
        this.wanted = [.. wanted.Select(name => (name, Encoding.UTF8.GetBytes(name)))];
        this.maxValueBytes = maxValueBytes;
        this.maxDepth = maxDepth;
        objectLevels = new ulong[(maxDepth + 63) / 64];
    }

    public bool IsComplete => state == State.Done;

    /// <summary>Why and where the body was refused, once it is known (the scanner reads no further then).</summary>
    internal JsonScanFailure? Failure { get; private set; }

    /// <summary>Why the body is not a JSON object, once it is known.</summary>
    public string? Error => Failure?.Message;

    /// <summary>Position of the object's closing brace (to insert properties before it).</summary>
    public long ClosingBrace { get; private set; } = -1;

    public int PropertyCount { get; private set; }

    public IReadOnlyDictionary<string, ScannedValue> Values => values;

    public void Feed(ReadOnlySpan<byte> data)
    {
        captureFrom = 0;
        var i = 0;
        while (i < data.Length && state != State.Failed)
        {
            var b = data[i];
            switch (state)
            {
                case State.String:
                    i = ScanString(data, i);
                    break;

                case State.Number:
                    i = ScanNumber(data, i);
                    break;

                case State.AfterValue:
                    if (IsWhitespace(b))
                    {
                        i++;
                    }
                    else if (b == ',')
                    {
                        state = InObject ? State.Key : State.Value;
                        i = ReadNext(data, i + 1);
                    }
                    else if (b is (byte)'}' or (byte)']')
                    {
                        i = Close(data, i);
                    }
                    else
                    {
                        Fail(JsonScanProblem.InvalidJson, i, InObject ? "',' or '}' was expected after a value" : "',' or ']' was expected after a value");
                    }

                    break;

                case State.Value:
                    i = IsWhitespace(b) ? i + 1 : StartValue(data, i);
                    break;

                case State.FirstValueOrEnd:
                    if (IsWhitespace(b))
                    {
                        i++;
                    }
                    else if (b == ']')
                    {
                        i = Close(data, i);
                    }
                    else
                    {
                        state = State.Value;
                    }

                    break;

                case State.FirstKeyOrEnd:
                case State.Key:
                    if (IsWhitespace(b))
                    {
                        i++;
                    }
                    else if (b == '"')
                    {
                        i = StartKey(data, i);
                    }
                    else if (b == '}' && state == State.FirstKeyOrEnd)
                    {
                        i = Close(data, i);
                    }
                    else
                    {
                        Fail(JsonScanProblem.InvalidJson, i, "a property name in double quotes was expected");
                    }

                    break;

                case State.Colon:
                    if (IsWhitespace(b))
                    {
                        i++;
                    }
                    else if (b == ':')
                    {
                        state = State.Value;
                        i = ReadNext(data, i + 1);
                    }
                    else
                    {
                        Fail(JsonScanProblem.InvalidJson, i, "':' was expected after a property name");
                    }

                    break;

                case State.Utf8Continuation:
                    if (b < utf8Low || b > utf8High)
                    {
                        Fail(JsonScanProblem.InvalidUtf8, i, $"byte 0x{b:X2} does not continue the UTF-8 sequence before it");
                        break;
                    }

                    (utf8Low, utf8High) = (0x80, 0xBF);
                    i++;
                    if (--utf8Remaining == 0)
                    {
                        state = State.String;
                    }

                    break;

                case State.Escape:
                    if (b == 'u')
                    {
                        (hexRemaining, hexValue, state) = (4, 0, State.UnicodeEscape);
                    }
                    else if (b is (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t')
                    {
                        state = State.String;
                    }
                    else
                    {
                        Fail(JsonScanProblem.InvalidJson, i, $"'\\{Show(b)}' is not a valid escape in a string");
                        break;
                    }

                    i++;
                    break;

                case State.UnicodeEscape:
                    ReadHexDigit(b, i);
                    i++;
                    break;

                case State.LowSurrogateBackslash:
                case State.LowSurrogateU:
                    if (b != (state == State.LowSurrogateBackslash ? '\\' : 'u'))
                    {
                        Fail(JsonScanProblem.InvalidJson, i, "a '\\u' escape of a high surrogate (D800-DBFF) must be followed by one of a low surrogate (DC00-DFFF)");
                        break;
                    }

                    if (state == State.LowSurrogateU)
                    {
                        (hexRemaining, hexValue, expectLowSurrogate, state) = (4, 0, true, State.UnicodeEscape);
                    }
                    else
                    {
                        state = State.LowSurrogateU;
                    }

                    i++;
                    break;

                case State.Literal:
                    if (b != literal[literalIndex])
                    {
                        Fail(JsonScanProblem.InvalidJson, i, "a value was expected (a string, number, object, array, true, false or null)");
                        break;
                    }

                    i++;
                    if (++literalIndex == literal.Length)
                    {
                        EndValue(data, i);
                    }

                    break;

                case State.BeforeObject:
                    if (b == '{')
                    {
                        i = Open(i, isObject: true);
                    }
                    else if (IsWhitespace(b))
                    {
                        i++;
                    }
                    else if (b == 0xEF && offset + i == 0)
                    {
                        (literalIndex, state) = (1, State.ByteOrderMark);
                        i++;
                    }
                    else
                    {
                        Fail(JsonScanProblem.InvalidJson, i, "the request body must be a JSON object ('{' expected)");
                    }

                    break;

                case State.ByteOrderMark:
                    if (b != (literalIndex == 1 ? 0xBB : 0xBF))
                    {
                        Fail(JsonScanProblem.InvalidJson, i, "the request body must be a JSON object ('{' expected)");
                        break;
                    }

                    i++;
                    if (++literalIndex == 3)
                    {
                        state = State.BeforeObject;
                    }

                    break;

                case State.Done:
                    if (!IsWhitespace(b))
                    {
                        Fail(JsonScanProblem.InvalidJson, i, "there is more than whitespace after the JSON object");
                        break;
                    }

                    i++;
                    break;
            }
        }

        if (state != State.Failed)
        {
            if (capturingKey)
            {
                CaptureKey(data[captureFrom..]);
            }
            else if (capturingValue)
            {
                CaptureValue(data[captureFrom..]);
            }
        }

        offset += data.Length;
    }

    /// <summary>Call at the end of the body: a body that stopped inside the object is an error.</summary>
    public void Complete()
    {
        if (state is State.Done or State.Failed)
        {
            return;
        }

        Failure = offset == 0 || state is State.BeforeObject or State.ByteOrderMark
            ? new JsonScanFailure(JsonScanProblem.InvalidJson, offset, "The request body is empty; a JSON object was expected.")
            : new JsonScanFailure(JsonScanProblem.InvalidJson, offset, $"The request body is not a complete JSON object: it ends at byte {offset} inside it.");
        state = State.Failed;
    }

    private bool InObject => (objectLevels[(depth - 1) >> 6] & (1UL << ((depth - 1) & 63))) != 0;

    /// <summary>Skips through string content with a vectorised search; stops at its end or at a byte that needs a closer look.</summary>
    private int ScanString(ReadOnlySpan<byte> data, int i)
    {
        while (true)
        {
            var next = data[i..].IndexOfAny(StringStops);
            if (next < 0)
            {
                return data.Length;
            }

            i += next;
            var b = data[i];
            if (b >= 0x80)
            {
                // Text beyond ASCII: the run up to the next quote or backslash is checked whole when it is all here.
                var tail = data[i..];
                var stop = tail.IndexOfAny((byte)'"', (byte)'\\');
                if (stop < 0 || !Utf8.IsValid(tail[..stop]) || tail[..stop].ContainsAnyInRange((byte)0, (byte)0x1F))
                {
                    // Cut by the chunk's end, or something wrong in it: byte by byte, to say where.
                    i = ScanUtf8(data, i);
                    if (state != State.String || i == data.Length)
                    {
                        return i;
                    }

                    continue;
                }

                i += stop;
                b = data[i];
            }

            if (b < 0x20)
            {
                Fail(JsonScanProblem.InvalidJson, i, $"control character 0x{b:X2} must be escaped in a string");
                return i;
            }

            if (b == '\\')
            {
                keyEscaped |= inKey;
                state = State.Escape;
                return i + 1;
            }

            i++;
            if (inKey)
            {
                EndKey(data, i - 1);
            }
            else
            {
                EndValue(data, i);
            }

            return i;
        }
    }

    /// <summary>
    /// Checks the multi-byte UTF-8 characters from <paramref name="i"/> on (the shortest form only, no surrogates,
    /// nothing above U+10FFFF); a character cut by the end of the chunk is finished in the next one.
    /// </summary>
    private int ScanUtf8(ReadOnlySpan<byte> data, int i)
    {
        while (i < data.Length)
        {
            var b = data[i];
            if (b < 0x80)
            {
                return i;
            }

            int remaining;
            byte low = 0x80, high = 0xBF;
            if (b is >= 0xC2 and <= 0xDF)
            {
                remaining = 1;
            }
            else if (b is >= 0xE0 and <= 0xEF)
            {
                remaining = 2;
                if (b == 0xE0)
                {
                    low = 0xA0; // shorter forms are overlong
                }
                else if (b == 0xED)
                {
                    high = 0x9F; // ED A0..BF would be a UTF-16 surrogate
                }
            }
            else if (b is >= 0xF0 and <= 0xF4)
            {
                remaining = 3;
                if (b == 0xF0)
                {
                    low = 0x90;
                }
                else if (b == 0xF4)
                {
                    high = 0x8F; // above U+10FFFF otherwise
                }
            }
            else
            {
                Fail(JsonScanProblem.InvalidUtf8, i, $"byte 0x{b:X2} cannot start a UTF-8 character");
                return i;
            }

            i++;
            for (; remaining > 0; remaining--, i++)
            {
                if (i == data.Length)
                {
                    (utf8Remaining, utf8Low, utf8High, state) = (remaining, low, high, State.Utf8Continuation);
                    return i;
                }

                var c = data[i];
                if (c < low || c > high)
                {
                    Fail(JsonScanProblem.InvalidUtf8, i, $"byte 0x{c:X2} does not continue the UTF-8 sequence before it");
                    return i;
                }

                (low, high) = (0x80, 0xBF);
            }
        }

        return i;
    }

    private void ReadHexDigit(byte b, int i)
    {
        var digit = b switch
        {
            >= (byte)'0' and <= (byte)'9' => b - '0',
            >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
            >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
            _ => -1,
        };
        if (digit < 0)
        {
            Fail(JsonScanProblem.InvalidJson, i, "'\\u' must be followed by four hex digits");
            return;
        }

        hexValue = (hexValue << 4) | digit;
        if (--hexRemaining > 0)
        {
            return;
        }

        var isHigh = hexValue is >= 0xD800 and <= 0xDBFF;
        var isLow = hexValue is >= 0xDC00 and <= 0xDFFF;
        if (expectLowSurrogate && !isLow)
        {
            Fail(JsonScanProblem.InvalidJson, i, "a '\\u' escape of a high surrogate (D800-DBFF) must be followed by one of a low surrogate (DC00-DFFF)");
        }
        else if (!expectLowSurrogate && isLow)
        {
            Fail(JsonScanProblem.InvalidJson, i, "a '\\u' escape of a low surrogate (DC00-DFFF) must follow one of a high surrogate");
        }
        else
        {
            state = isHigh ? State.LowSurrogateBackslash : State.String;
            expectLowSurrogate = false;
        }
    }

    /// <summary>Reads a number per the JSON grammar; the byte after it is read again as what follows a value.</summary>
    private int ScanNumber(ReadOnlySpan<byte> data, int i)
    {
        for (; i < data.Length; i++)
        {
            var b = data[i];
            var isDigit = (uint)(b - '0') <= 9;
            switch (number)
            {
                case NumberPart.Integer or NumberPart.Fraction or NumberPart.Exponent when isDigit:
                    continue;
                case NumberPart.AfterMinus when isDigit:
                    number = b == '0' ? NumberPart.Zero : NumberPart.Integer;
                    continue;
                case NumberPart.AfterDot when isDigit:
                    number = NumberPart.Fraction;
                    continue;
                case NumberPart.AfterExponent or NumberPart.AfterExponentSign when isDigit:
                    number = NumberPart.Exponent;
                    continue;
                case NumberPart.AfterExponent when b is (byte)'+' or (byte)'-':
                    number = NumberPart.AfterExponentSign;
                    continue;
                case NumberPart.Zero or NumberPart.Integer when b == '.':
                    number = NumberPart.AfterDot;
                    continue;
                case NumberPart.Zero or NumberPart.Integer or NumberPart.Fraction when b is (byte)'e' or (byte)'E':
                    number = NumberPart.AfterExponent;
                    continue;
                case NumberPart.Zero when isDigit:
                    Fail(JsonScanProblem.InvalidJson, i, "a number must not start with a leading zero");
                    return i;
                case NumberPart.Zero or NumberPart.Integer or NumberPart.Fraction or NumberPart.Exponent:
                    EndValue(data, i);
                    return i;
                default:
                    Fail(JsonScanProblem.InvalidJson, i, number switch
                    {
                        NumberPart.AfterMinus => "a digit was expected after '-' in a number",
                        NumberPart.AfterDot => "a digit was expected after '.' in a number",
                        _ => "a digit was expected in the exponent of a number",
                    });
                    return i;
            }
        }

        return i;
    }

    /// <summary>After ',' or ':' the next token mostly follows at once: it is read without a round through Feed's loop.</summary>
    private int ReadNext(ReadOnlySpan<byte> data, int i)
    {
        if (i == data.Length)
        {
            return i;
        }

        var b = data[i];
        return state == State.Value && !IsWhitespace(b) ? StartValue(data, i)
            : state == State.Key && b == '"' ? StartKey(data, i)
            : i;
    }

    private int StartValue(ReadOnlySpan<byte> data, int i)
    {
        var b = data[i];
        if (depth == 1)
        {
            valueStart = offset + i;
            capturingValue = currentKey is not null;
            overflowed = false;
            captureFrom = i;
            capture.ResetWrittenCount();
        }

        switch (b)
        {
            case (byte)'"':
                (inKey, state) = (false, State.String);
                return ScanString(data, i + 1);
            case (byte)'{' or (byte)'[':
                return Open(i, isObject: b == '{');
            case (byte)'-':
                (number, state) = (NumberPart.AfterMinus, State.Number);
                return ScanNumber(data, i + 1);
            case >= (byte)'0' and <= (byte)'9':
                (number, state) = (b == '0' ? NumberPart.Zero : NumberPart.Integer, State.Number);
                return ScanNumber(data, i + 1);
            case (byte)'t' or (byte)'f' or (byte)'n':
                literal = b == 't' ? True : b == 'f' ? False : Null;
                if (data[i..].StartsWith(literal))
                {
                    EndValue(data, i + literal.Length);
                    return i + literal.Length;
                }

                (literalIndex, state) = (1, State.Literal); // cut by the chunk's end, or not a literal
                return i + 1;
            default:
                Fail(JsonScanProblem.InvalidJson, i, "a value was expected (a string, number, object, array, true, false or null)");
                return i;
        }
    }

    private int Open(int i, bool isObject)
    {
        if (depth == maxDepth)
        {
            Fail(JsonScanProblem.TooDeep, i, $"objects and arrays are nested more than {maxDepth} levels deep");
            return i;
        }

        ref var word = ref objectLevels[depth >> 6];
        word = isObject ? word | (1UL << (depth & 63)) : word & ~(1UL << (depth & 63));
        depth++;
        state = isObject ? State.FirstKeyOrEnd : State.FirstValueOrEnd;
        return i + 1;
    }

    private int Close(ReadOnlySpan<byte> data, int i)
    {
        if (data[i] != (InObject ? '}' : ']'))
        {
            Fail(JsonScanProblem.InvalidJson, i, InObject ? "']' cannot close an object" : "'}' cannot close an array");
            return i;
        }

        i++;
        if (--depth == 0)
        {
            ClosingBrace = offset + i - 1;
            state = State.Done;
        }
        else
        {
            EndValue(data, i);
        }

        return i;
    }

    private int StartKey(ReadOnlySpan<byte> data, int i)
    {
        (inKey, state) = (true, State.String);
        capturingKey = depth == 1;
        if (capturingKey)
        {
            (keyEscaped, keyTooLong, captureFrom, currentKey) = (false, false, i + 1, null);
            key.ResetWrittenCount();
        }

        return ScanString(data, i + 1);
    }

    private void EndKey(ReadOnlySpan<byte> data, int closingQuote)
    {
        state = State.Colon;
        if (capturingKey)
        {
            CaptureKey(data[captureFrom..closingQuote]);
            capturingKey = false;
            currentKey = keyTooLong ? null : Wanted(key.WrittenSpan, keyEscaped);
        }
    }

    /// <summary>A value ended just before <paramref name="end"/> (an index in this chunk); a top-level one is counted and kept.</summary>
    private void EndValue(ReadOnlySpan<byte> data, int end)
    {
        state = State.AfterValue;
        if (depth != 1)
        {
            return;
        }

        if (capturingValue)
        {
            CaptureValue(data[captureFrom..end]);
            values[currentKey!] = new ScannedValue(valueStart, offset + end - valueStart, overflowed ? null : capture.WrittenSpan.ToArray());
            capturingValue = false;
        }

        PropertyCount++;
    }

    private void CaptureKey(ReadOnlySpan<byte> bytes)
    {
        if (key.WrittenCount + bytes.Length > MaxKeyBytes)
        {
            keyTooLong = true; // longer than any name asked for
            return;
        }

        key.Write(bytes);
    }

    private void CaptureValue(ReadOnlySpan<byte> bytes)
    {
        if (overflowed || capture.WrittenCount + bytes.Length > maxValueBytes)
        {
            overflowed = true;
            return;
        }

        capture.Write(bytes);
    }

    private string? Wanted(ReadOnlySpan<byte> raw, bool hasEscapes)
    {
        if (hasEscapes)
        {
            // Rare (e.g. "mo\u0064el"); the escapes were checked already, so this cannot fail.
            var quoted = new byte[raw.Length + 2];
            quoted[0] = quoted[^1] = (byte)'"';
            raw.CopyTo(quoted.AsSpan(1));
            var name = JsonSerializer.Deserialize<string>(quoted);
            return wanted.FirstOrDefault(w => w.Name == name).Name;
        }

        foreach (var (name, utf8) in wanted)
        {
            if (raw.SequenceEqual(utf8))
            {
                return name;
            }
        }

        return null;
    }

    private void Fail(JsonScanProblem problem, int index, string what)
    {
        var at = offset + index;
        var message = problem switch
        {
            JsonScanProblem.TooDeep => $"The request body's JSON is too deeply nested: {what} (at byte {at}).",
            JsonScanProblem.InvalidUtf8 => $"The request body is not valid UTF-8: {what} (at byte {at}).",
            _ => $"The request body is not valid JSON: {what} (at byte {at}).",
        };
        Failure ??= new JsonScanFailure(problem, at, message);
        state = State.Failed;
    }

    private static string Show(byte b) => b is >= 0x20 and < 0x7F ? ((char)b).ToString() : $"0x{b:X2}";

    private static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r';
}
