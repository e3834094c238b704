using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace LockN.Tests.Dispatch;

/// <summary>
/// Bodies that are not a well-formed, shallow, UTF-8 JSON object get a 400 from LockN and never reach the real
/// llama-server (one nested a million levels deep crashes it). "Never reached" is read from llama-server's own log:
/// it logs every chat body it cannot use (<see cref="RealLlamaServer.RefusedBodyLine"/>) and every one it starts
/// work on (<see cref="RealLlamaServer.TaskStartedLine"/>), in order; a good request sent afterwards and seen in the
/// log proves that the log has caught up past the refused one.
/// </summary>
public class BodyGuardTests(RealLlamaDispatchFixture server) : IClassFixture<RealLlamaDispatchFixture>
{
    private static readonly byte[] MalformedBrackets = Encoding.ASCII.GetBytes(
        $$"""{"a":[},"model":"{{RealLlamaDispatchFixture.Model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""");

    [Fact]
    public async Task A_malformed_body_is_logged_by_llama_server_when_it_does_reach_it()
    {
        // Calibrates the detector used below: the same body sent to llama-server directly is seen and refused there.
        var refusedBefore = server.Llama.CountLogLines(RealLlamaServer.RefusedBodyLine);

        using var response = await server.Llama.Client.PostAsync("/v1/chat/completions", Json(MalformedBrackets), TestContext.Current.CancellationToken);

        Assert.False(response.IsSuccessStatusCode);
        await WaitForAsync(() => server.Llama.CountLogLines(RealLlamaServer.RefusedBodyLine) == refusedBefore + 1);
    }

    [Fact]
    public async Task Mismatched_brackets_are_refused_and_never_reach_llama_server()
    {
        await AssertRefusedWithoutReachingLlamaAsync(MalformedBrackets, "invalid_json");
    }

    [Fact]
    public async Task A_body_nested_a_million_levels_deep_is_refused_and_llama_server_stays_up()
    {
        var body = Encoding.ASCII.GetBytes(
            $$"""{"model":"{{RealLlamaDispatchFixture.Model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"x":"""
            + new string('[', 1_000_000) + new string(']', 1_000_000) + "}");
        Assert.InRange(body.Length, 2_000_000, 2_001_000);

        await AssertRefusedWithoutReachingLlamaAsync(body, "json_too_deep");
    }

    [Fact]
    public async Task A_body_with_invalid_utf8_is_refused_and_never_reaches_llama_server()
    {
        byte[] body = [.. Encoding.ASCII.GetBytes($$"""{"model":"{{RealLlamaDispatchFixture.Model}}","messages":[{"role":"user","content":"caf"""), 0xC3, 0x28, .. "\"}],\"max_tokens\":2}"u8];

        await AssertRefusedWithoutReachingLlamaAsync(body, "invalid_utf8");
    }

    private async Task AssertRefusedWithoutReachingLlamaAsync(byte[] body, string code)
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var refusedBefore = server.Llama.CountLogLines(RealLlamaServer.RefusedBodyLine);
        var tasksBefore = server.Llama.CountLogLines(RealLlamaServer.TaskStartedLine);

        using (var refused = await server.Client.PostAsync("/v1/chat/completions", Json(body), cancellationToken))
        {
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            var error = (await refused.Content.ReadFromJsonAsync<JsonElement>(cancellationToken)).GetProperty("error");
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.Equal(code, error.GetProperty("code").GetString());
            Assert.Contains("at byte", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        Assert.True(await server.Llama.IsHealthyAsync(cancellationToken), "llama-server is down:\n" + server.Llama.LogTail());

        using (var chat = DispatchServerFixture.Chat("after a refused body", maxTokens: 2, stream: false, model: RealLlamaDispatchFixture.Model))
        using (var answer = await server.Client.SendAsync(chat, cancellationToken))
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }

        // The good request's task is in the log, so anything llama-server logged for the refused body is too.
        await WaitForAsync(() => server.Llama.CountLogLines(RealLlamaServer.TaskStartedLine) == tasksBefore + 1);
        Assert.Equal(refusedBefore, server.Llama.CountLogLines(RealLlamaServer.RefusedBodyLine));
        Assert.False(server.Llama.HasExited);
    }

    private static ByteArrayContent Json(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    private async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
        while (!condition())
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, "llama-server's log did not show the expected line:\n" + server.Llama.LogTail());
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }
}
