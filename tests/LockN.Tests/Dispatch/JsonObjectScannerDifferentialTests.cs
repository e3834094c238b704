using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LockN.Dispatch;

namespace LockN.Tests.Dispatch;

/// <summary>
/// Generated and mutated documents, each fed to <see cref="JsonObjectScanner"/> in many chunkings, must be judged as
/// <see cref="Utf8JsonReader"/> judges them (reading every token, with every string transcoded, which is where it
/// checks UTF-8 and surrogate escapes), and for valid ones the scanner must find the same top-level values.
/// </summary>
public class JsonObjectScannerDifferentialTests(ITestOutputHelper output)
{
    private const int Seed = 20_261_202;
    private const int Documents = 12_000;
    private const int MaxDepth = 64;
    private static readonly string[] Wanted = ["model", "stream", "stream_options"];

    [Fact]
    public void Scanner_and_Utf8JsonReader_agree_on_generated_and_mutated_documents_in_every_chunking()
    {
        var started = Stopwatch.GetTimestamp();
        var (valid, invalid, chunkings) = (0, 0, 0L);
        for (var n = 0; n < Documents; n++)
        {
            var random = new Random(Seed + n);
            var document = new DocumentGenerator(random).Next(n);
            var expected = Oracle(document);
            if (expected is null)
            {
                invalid++;
            }
            else
            {
                valid++;
            }

            foreach (var chunks in Chunkings(document, random))
            {
                chunkings++;
                var problem = Compare(document, chunks, expected);
                if (problem is not null)
                {
                    Assert.Fail($"Document {n} (seed {Seed} + {n}), chunks of [{string.Join(",", chunks)}] bytes: {problem}\n"
                        + $"Utf8JsonReader: {(expected is null ? "invalid" : "valid")}\nDocument ({document.Length} bytes): {Show(document)}");
                }
            }
        }

        output.WriteLine($"{Documents} documents ({valid} valid, {invalid} invalid), {chunkings} chunkings, seed {Seed}, "
            + $"{Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s");

        // Both sides of the line must be well represented, or the comparison says little.
        Assert.InRange(valid, Documents / 5, Documents * 4 / 5);
    }

    /// <summary>Whole, one byte at a time, split in two at every byte (small documents), and a few random chunkings.</summary>
    private static IEnumerable<int[]> Chunkings(byte[] document, Random random)
    {
        yield return [document.Length];
        yield return [.. Enumerable.Repeat(1, document.Length)];
        if (document.Length <= 64)
        {
            for (var split = 1; split < document.Length; split++)
            {
                yield return [split, document.Length - split];
            }
        }

        for (var k = 0; k < 3; k++)
        {
            var sizes = new List<int>();
            for (var left = document.Length; left > 0;)
            {
                var size = Math.Min(left, random.Next(1, 2 + random.Next(document.Length)));
                sizes.Add(size);
                left -= size;
            }

            yield return [.. sizes];
        }
    }

    private static string? Compare(byte[] document, int[] chunks, Expected? expected)
    {
        var scanner = new JsonObjectScanner(Wanted, maxDepth: MaxDepth);
        var at = 0;
        foreach (var size in chunks)
        {
            scanner.Feed(document.AsSpan(at, size));
            at += size;
        }

        scanner.Complete();
        if (expected is null)
        {
            if (scanner.Failure is not { } failure)
            {
                return "the scanner accepted it";
            }

            return failure.Offset is < 0 || failure.Offset > document.Length ? $"failure offset {failure.Offset} is outside the document" : null;
        }

        if (scanner.Failure is { } refused)
        {
            return $"the scanner refused it: {refused.Message}";
        }

        if (scanner.ClosingBrace != expected.ClosingBrace || scanner.PropertyCount != expected.PropertyCount)
        {
            return $"closing brace {scanner.ClosingBrace} / {scanner.PropertyCount} properties, expected {expected.ClosingBrace} / {expected.PropertyCount}";
        }

        if (!scanner.Values.Keys.Order().SequenceEqual(expected.Values.Keys.Order()))
        {
            return $"found [{string.Join(",", scanner.Values.Keys)}], expected [{string.Join(",", expected.Values.Keys)}]";
        }

        foreach (var (name, (start, end)) in expected.Values)
        {
            var value = scanner.Values[name];
            if (value.Start != start || value.Length != end - start || !value.Bytes.AsSpan().SequenceEqual(document.AsSpan((int)start, (int)(end - start))))
            {
                return $"'{name}' at {value.Start}+{value.Length} = {(value.Bytes is null ? "(not kept)" : Show(value.Bytes))}, expected {start}+{end - start}";
            }
        }

        return null;
    }

    private sealed record Expected(Dictionary<string, (long Start, long End)> Values, long ClosingBrace, int PropertyCount);

    /// <summary>What Utf8JsonReader makes of the document (a leading byte-order mark skipped, as LockN does); null when invalid.</summary>
    private static Expected? Oracle(byte[] document)
    {
        var skipped = document.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0;
        var reader = new Utf8JsonReader(document.AsSpan(skipped), new JsonReaderOptions { MaxDepth = MaxDepth });
        var values = new Dictionary<string, (long, long)>();
        var (closingBrace, count, property, valueStart) = (-1L, 0, (string?)null, -1L);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read())
            {
                var token = reader.TokenType;
                var text = token is JsonTokenType.String or JsonTokenType.PropertyName ? reader.GetString() : null;
                var tokenStart = reader.TokenStartIndex + skipped;
                if (reader.CurrentDepth == 0)
                {
                    closingBrace = tokenStart;
                }
                else if (reader.CurrentDepth == 1 && token == JsonTokenType.PropertyName)
                {
                    (property, valueStart) = (text, -1);
                    count++;
                }
                else if (reader.CurrentDepth == 1)
                {
                    if (token is JsonTokenType.StartObject or JsonTokenType.StartArray)
                    {
                        valueStart = tokenStart;
                        continue;
                    }

                    var start = token is JsonTokenType.EndObject or JsonTokenType.EndArray ? valueStart : tokenStart;
                    if (Wanted.Contains(property))
                    {
                        values[property!] = (start, reader.BytesConsumed + skipped);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return null;
        }

        return new Expected(values, closingBrace, count);
    }

    private static string Show(ReadOnlySpan<byte> bytes)
    {
        var text = new StringBuilder();
        foreach (var b in bytes)
        {
            text.Append(b is >= 0x20 and < 0x7F and not (byte)'\\' ? ((char)b).ToString() : $"\\x{b:X2}");
        }

        return text.ToString();
    }

    /// <summary>Random JSON objects, valid or made invalid in one of many ways; every document comes from its own seed.</summary>
    private sealed class DocumentGenerator(Random random)
    {
        private static readonly string[] Numbers =
        [
            "0", "-0", "1", "-1", "10", "1e5", "1E5", "1e+5", "1E-5", "-0.0", "0.5", "-12.25e-10", "1e5000", "123456789012345678901234567890",
            "01", "00", "-01", "1.", ".5", "-", "+1", "1.e5", "1e", "1e+", "--1", "1.5.5", "0x10", "Infinity", "NaN", "-.5", "1ee5", "2E-0",
        ];

        private static readonly string[] Escapes =
        [
            "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0000", "\\u00e9", "\\u20AC", "\\uFFFF", "\\ud83d\\ude00", "\\uD800\\uDC00", "\\uDBFF\\uDFFF",
        ];

        private static readonly string[] BadEscapes = ["\\x", "\\u12G4", "\\u12", "\\ud800", "\\udc00", "\\ud800\\n", "\\ud800\\ud800", "\\ud800x", "\\U0041", "\\'"];

        private static readonly byte[][] BadUtf8 =
        [
            [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF], [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFE], [0xFF], [0x80], [0xBF],
            [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xC3], [0xE2, 0x28, 0xA1], [0xC3, 0x28],
        ];

        private static readonly byte[] Interesting = "{}[]\",:\\ 0123456789-+.eEtfnu\t\n\r"u8.ToArray();

        private readonly List<byte> bytes = [];

        public byte[] Next(int n)
        {
            bytes.Clear();
            var kind = n % 10;
            if (kind == 9)
            {
                Deep(MaxDepth - 3 + random.Next(6)); // 61..66 levels: both sides of the limit
            }
            else
            {
                Whitespace();
                Object(1, maxDepth: random.Next(4) == 0 ? 8 : 4, top: true, allowInvalid: kind == 8);
                Whitespace();
            }

            if (random.Next(20) == 0)
            {
                bytes.InsertRange(0, [0xEF, 0xBB, 0xBF]);
            }

            // About half the documents stay as generated; the others are broken the way bodies are in practice.
            if (kind < 4 || kind == 9)
            {
                Mutate();
            }

            return [.. bytes];
        }

        private void Deep(int levels)
        {
            Ascii("{\"model\":\"m\",\"messages\":");
            var closers = new Stack<char>();
            for (var level = 2; level <= levels; level++)
            {
                if (random.Next(2) == 0)
                {
                    Ascii(random.Next(3) == 0 ? "[1," : "[");
                    closers.Push(']');
                }
                else
                {
                    Ascii(random.Next(3) == 0 ? "{\"k\":true,\"a\":" : "{\"a\":");
                    closers.Push('}');
                }
            }

            Ascii("\"deep\"");
            while (closers.Count > 0)
            {
                Ascii(closers.Pop().ToString());
            }

            Ascii(",\"stream\":false}");
        }

        private void Mutate()
        {
            var mutations = 1 + (random.Next(4) == 0 ? 1 : 0);
            for (var m = 0; m < mutations && bytes.Count > 0; m++)
            {
                var at = random.Next(bytes.Count);
                switch (random.Next(8))
                {
                    case 0:
                        bytes.RemoveRange(at, bytes.Count - at); // cut off
                        break;
                    case 1:
                        bytes[at] = random.Next(2) == 0 ? Interesting[random.Next(Interesting.Length)] : (byte)random.Next(256);
                        break;
                    case 2:
                        bytes.Insert(at, random.Next(2) == 0 ? Interesting[random.Next(Interesting.Length)] : (byte)random.Next(256));
                        break;
                    case 3:
                        bytes.RemoveAt(at);
                        break;
                    case 4:
                        bytes.InsertRange(at, BadUtf8[random.Next(BadUtf8.Length)]);
                        break;
                    case 5:
                        var bracket = bytes.FindIndex(at, b => b is (byte)'{' or (byte)'}' or (byte)'[' or (byte)']');
                        if (bracket >= 0)
                        {
                            bytes[bracket] = bytes[bracket] switch { (byte)'{' => (byte)'[', (byte)'[' => (byte)'{', (byte)'}' => (byte)']', _ => (byte)'}' };
                        }

                        break;
                    case 6:
                        var length = random.Next(1, Math.Min(8, bytes.Count - at) + 1);
                        bytes.InsertRange(at, bytes.GetRange(at, length));
                        break;
                    default:
                        bytes.AddRange(random.Next(2) == 0 ? "x"u8.ToArray() : "{}"u8.ToArray());
                        break;
                }
            }
        }

        private void Object(int depth, int maxDepth, bool top, bool allowInvalid)
        {
            bytes.Add((byte)'{');
            var count = random.Next(top ? 7 : 4);
            for (var i = 0; i < count; i++)
            {
                if (i > 0)
                {
                    bytes.Add((byte)',');
                }

                Whitespace();
                if (top && random.Next(2) == 0)
                {
                    var name = Wanted[random.Next(Wanted.Length)];
                    Ascii(random.Next(10) == 0 ? "\"" + name.Replace("e", "\\u0065", StringComparison.Ordinal) + "\"" : "\"" + name + "\"");
                }
                else
                {
                    String(allowInvalid);
                }

                Whitespace();
                bytes.Add((byte)':');
                Whitespace();
                Value(depth + 1, maxDepth, allowInvalid);
                Whitespace();
            }

            bytes.Add((byte)'}');
        }

        private void Value(int depth, int maxDepth, bool allowInvalid)
        {
            switch (random.Next(depth >= maxDepth ? 4 : 6))
            {
                case 0 or 1:
                    String(allowInvalid);
                    break;
                case 2:
                    Ascii(random.Next(3) == 0 ? Numbers[random.Next(allowInvalid ? Numbers.Length : 14)] : RandomNumber());
                    break;
                case 3:
                    Ascii(random.Next(allowInvalid ? 5 : 3) switch { 0 => "true", 1 => "false", 2 => "null", 3 => "tru", _ => "nul1" });
                    break;
                case 4:
                    Object(depth, maxDepth, top: false, allowInvalid);
                    break;
                default:
                    bytes.Add((byte)'[');
                    var count = random.Next(4);
                    for (var i = 0; i < count; i++)
                    {
                        if (i > 0)
                        {
                            bytes.Add((byte)',');
                        }

                        Whitespace();
                        Value(depth + 1, maxDepth, allowInvalid);
                        Whitespace();
                    }

                    bytes.Add((byte)']');
                    break;
            }
        }

        private string RandomNumber()
        {
            var text = new StringBuilder();
            if (random.Next(3) == 0)
            {
                text.Append('-');
            }

            text.Append(random.Next(4) == 0 ? "0" : random.NextInt64(1, long.MaxValue).ToString(System.Globalization.CultureInfo.InvariantCulture)[..random.Next(1, 12)]);
            if (random.Next(3) == 0)
            {
                text.Append('.').Append(random.Next(1_000_000));
            }

            if (random.Next(4) == 0)
            {
                text.Append("eE"[random.Next(2)]).Append(random.Next(3) switch { 0 => "", 1 => "+", _ => "-" }).Append(random.Next(400));
            }

            return text.ToString();
        }

        private void String(bool allowInvalid)
        {
            bytes.Add((byte)'"');
            var parts = random.Next(6);
            for (var i = 0; i < parts; i++)
            {
                switch (random.Next(allowInvalid ? 9 : 6))
                {
                    case 0 or 1:
                        for (var k = random.Next(1, 6); k > 0; k--)
                        {
                            bytes.Add((byte)random.Next(0x20, 0x80) is var c && c is (byte)'"' or (byte)'\\' ? (byte)'a' : c);
                        }

                        break;
                    case 2:
                        Ascii(Escapes[random.Next(Escapes.Length)]);
                        break;
                    case 3:
                        Ascii($"\\u{random.Next(0x10000):x4}"); // surrogates among them are paired only by chance
                        break;
                    case 4 or 5:
                        var scalar = random.Next(4) switch { 0 => random.Next(0x80, 0x800), 1 => random.Next(0x800, 0xD800), 2 => random.Next(0xE000, 0x10000), _ => random.Next(0x10000, 0x110000) };
                        bytes.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(scalar)));
                        break;
                    case 6:
                        Ascii(BadEscapes[random.Next(BadEscapes.Length)]);
                        break;
                    case 7:
                        bytes.AddRange(BadUtf8[random.Next(BadUtf8.Length)]);
                        break;
                    default:
                        bytes.Add((byte)random.Next(0x20)); // a raw control character
                        break;
                }
            }

            bytes.Add((byte)'"');
        }

        private void Whitespace()
        {
            while (random.Next(4) == 0)
            {
                bytes.Add(" \t\n\r"u8[random.Next(4)]);
            }
        }

        private void Ascii(string text) => bytes.AddRange(Encoding.ASCII.GetBytes(text));
    }
}
