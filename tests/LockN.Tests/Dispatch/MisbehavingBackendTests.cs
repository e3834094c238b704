using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LockN.Tests.Dispatch;

/// <summary>
/// What the real llama-server cannot be made to do on cue, with the stand-in: a stream that goes silent, one with a
/// malformed event, one that ends in an error event. Every client gets a clear error, never a hang or a broken answer.
/// </summary>
[Collection(typeof(Transcription.SlotDisciplineCollection))]
public class MisbehavingBackendTests(MisbehavingBackendTests.Fixture server, ITestOutputHelper output) : IClassFixture<MisbehavingBackendTests.Fixture>
{
    public const double StallSeconds = 1.5;

    public sealed class Fixture : DispatchServerFixture
    {
        protected override IDictionary<string, string?> DispatchSettings => new Dictionary<string, string?>
        {
            ["StallSeconds"] = StallSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_backend_that_goes_silent_is_a_stall_the_client_hears_of_and_the_backend_is_marked_down(bool stream)
    {
        server.StandIn.Misbehaviour = Misbehaviour.Hang;
        try
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await server.Client.SendAsync(DispatchServerFixture.Chat("silent-" + stream, 10, stream));
            var body = await response.Content.ReadAsStringAsync();
            var after = Stopwatch.GetElapsedTime(started);
            output.WriteLine($"stream={stream}: {(int)response.StatusCode} after {after.TotalSeconds:0.00} s: {body.Split('\n').Last(l => l.Length > 0)}");
            Assert.Equal(stream ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Contains("\"backend_stalled\"", body, StringComparison.Ordinal);
            Assert.InRange(after.TotalSeconds, StallSeconds, StallSeconds + 3);
            // Marked down at once (the next health check, answered by this stand-in's healthy /health, brings it back).
            Assert.Contains(server.Logs.Lines, l => l.Contains("Backend coder marked unhealthy", StringComparison.Ordinal) && l.Contains("stalled", StringComparison.Ordinal));
        }
        finally
        {
            server.StandIn.Misbehaviour = Misbehaviour.None;
        }

        await server.WaitForBackendAsync("ready", TimeSpan.FromSeconds(5)); // the next health check brings it back
        Assert.Equal(0, server.StandIn.BusySlots);
    }

    [Fact]
    public async Task A_malformed_event_gets_a_plain_client_a_503_never_a_broken_answer()
    {
        server.StandIn.Misbehaviour = Misbehaviour.MalformedEvent;
        try
        {
            using var response = await server.Client.SendAsync(DispatchServerFixture.Chat("malformed", 10, stream: false));
            var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
            output.WriteLine(error.ToString());
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("backend_error", error.GetProperty("code").GetString());
            Assert.Contains("malformed", error.GetProperty("message").GetString(), StringComparison.Ordinal);
        }
        finally
        {
            server.StandIn.Misbehaviour = Misbehaviour.None;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_error_event_mid_answer_reaches_the_client_in_llama_servers_words(bool stream)
    {
        server.StandIn.Misbehaviour = Misbehaviour.ErrorEvent;
        try
        {
            using var response = await server.Client.SendAsync(DispatchServerFixture.Chat("error-event-" + stream, 10, stream));
            var body = await response.Content.ReadAsStringAsync();
            output.WriteLine($"{(int)response.StatusCode}: {body.Split('\n').Last(l => l.Length > 0)}");
            // A plain client gets llama-server's status; a stream, OpenAI's error event (a data line, which SDKs read).
            var json = stream ? body.Split('\n').Last(l => l.StartsWith("data: ", StringComparison.Ordinal))[6..] : body;
            var error = JsonDocument.Parse(json).RootElement.GetProperty("error");
            Assert.Equal(stream ? HttpStatusCode.OK : HttpStatusCode.InternalServerError, response.StatusCode);
            Assert.Equal("backend_error", error.GetProperty("code").GetString());
            Assert.Contains("the stand-in failed mid-answer", error.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.DoesNotContain("\nerror:", body, StringComparison.Ordinal);
        }
        finally
        {
            server.StandIn.Misbehaviour = Misbehaviour.None;
        }
    }
}
