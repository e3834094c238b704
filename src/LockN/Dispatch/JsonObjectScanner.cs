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
internal sealed partial class JsonObjectScanner
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
}
