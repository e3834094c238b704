using System.Buffers;
using System.Text.Json;

namespace LockN.Dispatch;

/// <summary>Numbers, literals, brackets, keys and the values kept.</summary>
internal sealed partial class JsonObjectScanner
{
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
