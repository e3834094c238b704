using System.Text;
using System.Text.Json;
using LockN.Dispatch;

namespace LockN.Tests.Dispatch;

/// <summary>The scanner must find the same top-level values as a full JSON parser, however the body is cut into chunks.</summary>
public class JsonObjectScannerTests
{
    private const string Body = """
        {"messages":[{"role":"user","content":[{"type":"text","text":"say \"model\": {x} \\ done"},
         {"type":"image_url","image_url":{"url":"data:image/png;base64,QUJD"}}]}],
         "mo\u0064el" : "qwen2.5-vl-7b", "temperature":0.5e0 ,"stream":true,
         "stream_options":{"include_usage":false,"nested":[1,{"a":"}"}]},"n":null}
        """;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(100_000)]
    public void Finds_top_level_values_and_their_positions_across_any_chunking(int chunkSize)
    {
        var bytes = Encoding.UTF8.GetBytes(Body);
        var scanner = new JsonObjectScanner(["model", "stream", "stream_options", "n"]);
        for (var i = 0; i < bytes.Length; i += chunkSize)
        {
            scanner.Feed(bytes.AsSpan(i, Math.Min(chunkSize, bytes.Length - i)));
        }

        scanner.Complete();

        Assert.Null(scanner.Error);
        using var parsed = JsonDocument.Parse(bytes);
        foreach (var name in new[] { "model", "stream", "stream_options", "n" })
        {
            var value = scanner.Values[name];
            var expected = parsed.RootElement.GetProperty(name).GetRawText();
            Assert.Equal(expected, Encoding.UTF8.GetString(value.Bytes!));
            Assert.Equal(expected, Encoding.UTF8.GetString(bytes, (int)value.Start, (int)value.Length));
        }

        Assert.Equal(bytes.AsSpan().LastIndexOf((byte)'}'), scanner.ClosingBrace);
        Assert.Equal(6, scanner.PropertyCount);
        Assert.DoesNotContain("messages", scanner.Values.Keys);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("[]")]
    [InlineData("\"model\"")]
    [InlineData("{\"model\":\"a\"")]
    [InlineData("{\"model\" \"a\"}")]
    [InlineData("{\"model\":\"a\",}")]
    [InlineData("{\"model\":\"a\"} x")]
    [InlineData("{\"model\":,}")]
    [InlineData("{\"messages\":[{\"a\":\"b\"}}")]
    public void Refuses_a_body_that_is_not_one_json_object(string body)
    {
        var scanner = new JsonObjectScanner(["model"]);
        scanner.Feed(Encoding.UTF8.GetBytes(body));
        scanner.Complete();

        Assert.NotNull(scanner.Error);
    }

    [Fact]
    public void Keeps_the_position_but_not_the_bytes_of_a_value_over_the_capture_limit()
    {
        var body = Encoding.UTF8.GetBytes("{\"model\":\"" + new string('x', 100) + "\",\"stream\":false}");
        var scanner = new JsonObjectScanner(["model", "stream"], maxValueBytes: 50);
        scanner.Feed(body);
        scanner.Complete();

        Assert.Null(scanner.Error);
        Assert.False(scanner.Values["model"].Captured);
        Assert.Equal(102, scanner.Values["model"].Length);
        Assert.Equal("false", Encoding.UTF8.GetString(scanner.Values["stream"].Bytes!));
    }
}
