using System.Text.Unicode;

namespace LockN.Dispatch;

/// <summary>Strings: the fast skip, UTF-8 and escapes.</summary>
internal sealed partial class JsonObjectScanner
{
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
}
