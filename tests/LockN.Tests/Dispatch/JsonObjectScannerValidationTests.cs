using System.Text;
using LockN.Dispatch;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace LockN.Tests.Dispatch;

/// <summary>The scanner refuses, with what and where, every body that is not one well-formed, shallow enough, UTF-8 JSON object.</summary>
public class JsonObjectScannerValidationTests
{
    [Theory]
    [InlineData("{\"a\":[},\"model\":\"m\"}", 6)]
    [InlineData("{\"a\":{]}", 6)]
    [InlineData("{\"a\":[1}", 7)]
    [InlineData("{\"a\":[[]}", 8)]
    [InlineData("{\"model\":\"m\"]", 12)]
    public void Refuses_a_bracket_that_does_not_close_the_one_it_should(string body, long offset)
    {
        var failure = Scan(Encoding.UTF8.GetBytes(body), chunk: 1);

        Assert.Equal(JsonScanProblem.InvalidJson, failure?.Problem);
        Assert.Equal(offset, failure!.Offset);
        Assert.Contains($"at byte {offset}", failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(63, true)]
    [InlineData(64, true)]
    [InlineData(65, false)]
    public void Accepts_64_levels_of_nesting_and_refuses_65(int levels, bool accepted)
    {
        // The body object is the first level.
        var body = "{\"model\":\"m\",\"a\":" + Nest(levels - 1) + "}";

        var failure = Scan(Encoding.UTF8.GetBytes(body), chunk: 7);

        Assert.Equal(accepted, failure is null);
        if (!accepted)
        {
            Assert.Equal(JsonScanProblem.TooDeep, failure!.Problem);
            Assert.Equal(body.IndexOf('[', StringComparison.Ordinal) + 63, failure.Offset);
        }
    }

    [Fact]
    public void Depth_limit_is_the_one_given()
    {
        var body = Encoding.UTF8.GetBytes("{\"a\":{\"b\":[]}}");

        Assert.Null(Scan(body, chunk: 100, maxDepth: 3));
        Assert.Equal(JsonScanProblem.TooDeep, Scan(body, chunk: 100, maxDepth: 2)?.Problem);
    }

    [Fact]
    public void A_million_levels_are_refused_at_the_limit_without_the_scanner_holding_them()
    {
        var body = Encoding.ASCII.GetBytes("{\"model\":\"m\",\"messages\":" + new string('[', 1_000_000) + new string(']', 1_000_000) + "}");
        var scanner = new JsonObjectScanner(DispatchRequest.ScannedProperties);

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < body.Length && scanner.Failure is null; i += 4096)
        {
            scanner.Feed(body.AsSpan(i, Math.Min(4096, body.Length - i)));
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        Assert.Equal(JsonScanProblem.TooDeep, scanner.Failure?.Problem);
        Assert.Equal(24 + 63, scanner.Failure!.Offset); // the 64th '[' opens the 65th level
        Assert.InRange(allocated, 0, 4096); // the failure and its message; nothing per level
    }

    [Fact]
    public void Scanning_a_large_valid_body_allocates_nothing_per_byte()
    {
        var body = new StringBuilder("{\"model\":\"m\",\"stream\":true,\"messages\":[");
        while (body.Length < 8_000_000)
        {
            body.Append("{\"role\":\"user\",\"content\":\"Grüße — 日本語 😀 \\\"q\\\" \\u00e9\\ud83d\\ude00\",\"n\":[1,-2.5e3,true,null,{\"x\":[]}]},");
        }

        body.Append("{}]}");
        var bytes = Encoding.UTF8.GetBytes(body.ToString());
        var scanner = new JsonObjectScanner(DispatchRequest.ScannedProperties);

        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < bytes.Length; i += 4096)
        {
            scanner.Feed(bytes.AsSpan(i, Math.Min(4096, bytes.Length - i)));
        }

        scanner.Complete();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;

        Assert.Null(scanner.Error);
        Assert.InRange(allocated, 0, 16 * 1024); // the two kept values
    }

    [Theory]
    [InlineData(new byte[] { 0xC0, 0x80 }, 0)] // overlong NUL
    [InlineData(new byte[] { 0xE0, 0x80, 0xAF }, 1)] // overlong '/'
    [InlineData(new byte[] { 0xF0, 0x8F, 0xBF, 0xBF }, 1)] // overlong U+FFFF
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, 1)] // UTF-16 surrogate D800
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 }, 1)] // above U+10FFFF
    [InlineData(new byte[] { 0xF5, 0x80, 0x80, 0x80 }, 0)]
    [InlineData(new byte[] { 0x80 }, 0)] // a continuation byte alone
    [InlineData(new byte[] { 0xE2, 0x82 }, 2)] // cut off by the closing quote
    [InlineData(new byte[] { 0xFF }, 0)]
    public void Refuses_a_string_that_is_not_utf8(byte[] bad, int badByte)
    {
        byte[] body = [.. "{\"model\":\"m\",\"content\":\"ok "u8, .. bad, .. "\"}"u8];
        const int at = 27; // where the bad bytes begin

        foreach (var chunk in new[] { 1, 2, 3, 27, 1000 })
        {
            var failure = Scan(body, chunk);

            Assert.Equal(JsonScanProblem.InvalidUtf8, failure?.Problem);
            Assert.Equal(at + badByte, failure!.Offset);
            Assert.StartsWith("The request body is not valid UTF-8", failure.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("{\"a\":\"\\ud800\"}")]
    [InlineData("{\"a\":\"\\udc00\"}")]
    [InlineData("{\"a\":\"\\ud800\\u0041\"}")]
    [InlineData("{\"\\ud800x\":1}")]
    [InlineData("{\"a\":\"\\x\"}")]
    [InlineData("{\"a\":\"\\u12g4\"}")]
    [InlineData("{\"a\":\"tab\there\"}")]
    [InlineData("{\"a\":01}")]
    [InlineData("{\"a\":1.}")]
    [InlineData("{\"a\":.5}")]
    [InlineData("{\"a\":-}")]
    [InlineData("{\"a\":1e}")]
    [InlineData("{\"a\":1x}")]
    [InlineData("{\"a\":tru}")]
    [InlineData("{\"a\":nulll}")]
    [InlineData("{\"a\":1} {}")]
    [InlineData("{\"a\":1,}")]
    [InlineData("{\"a\":[1,]}")]
    public void Refuses_bad_escapes_numbers_literals_and_trailing_data(string body)
    {
        Assert.Equal(JsonScanProblem.InvalidJson, Scan(Encoding.UTF8.GetBytes(body), chunk: 1)?.Problem);
    }

    [Fact]
    public void Accepts_a_byte_order_mark_but_not_part_of_one()
    {
        Assert.Null(Scan([0xEF, 0xBB, 0xBF, .. "{}"u8], chunk: 1));
        Assert.Equal(JsonScanProblem.InvalidJson, Scan([0xEF, 0xBB, .. "{}"u8], chunk: 1)?.Problem);
        Assert.Equal(JsonScanProblem.InvalidJson, Scan([(byte)' ', 0xEF, 0xBB, 0xBF, .. "{}"u8], chunk: 1)?.Problem);
    }

    [Theory]
    [InlineData("{\"a\":-0,\"b\":1e5,\"c\":1E+5,\"d\":0.5e-3,\"e\":1e5000,\"f\":123456789012345678901234567890}")]
    [InlineData("{\"a\":\"\\ud83d\\ude00 \\u0000 \\/ \\b\\f\\n\\r\\t \u007f\"}")]
    [InlineData("\uFEFF {\"a\":[[],{},\"\",true,false,null]} \r\n\t")]
    public void Accepts_what_the_json_grammar_allows(string body)
    {
        Assert.Null(Scan(Encoding.UTF8.GetBytes(body), chunk: 1));
    }

    [Fact]
    public void A_depth_setting_outside_its_range_stops_start_up_naming_the_key()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Dispatch:MaxJsonDepth"] = "0" })
            .Build();
        var services = new ServiceCollection().AddDispatch(configuration).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<DispatchOptions>>().Value);

        Assert.Contains("Dispatch:MaxJsonDepth must be between 1 and 1024", error.Message, StringComparison.Ordinal);
    }

    private static JsonScanFailure? Scan(byte[] body, int chunk, int maxDepth = JsonObjectScanner.DefaultMaxDepth)
    {
        var scanner = new JsonObjectScanner(DispatchRequest.ScannedProperties, maxDepth: maxDepth);
        for (var i = 0; i < body.Length; i += chunk)
        {
            scanner.Feed(body.AsSpan(i, Math.Min(chunk, body.Length - i)));
        }

        scanner.Complete();
        return scanner.Failure;
    }

    private static string Nest(int levels) => new string('[', levels) + new string(']', levels);
}
