using System.Diagnostics;
using System.Net;
using LockN.Tests.Transcription;

namespace LockN.Tests.Dispatch;

/// <summary>
/// The incident Dispatch exists for: a one-slot llama-server kept generating 8,000 tokens for a client that had
/// gone, and every later request hung behind it. Here the client goes (or its deadline passes) after 1 s; the
/// generation must stop and the request waiting behind it must reach the backend within 200 ms.
/// </summary>
[Collection(typeof(SlotDisciplineCollection))]
public class AbandonedRequestTests(DispatchServerFixture server, ITestOutputHelper output) : IClassFixture<DispatchServerFixture>
{
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(1);

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public async Task Abandoned_generation_stops_and_the_next_request_gets_the_slot_within_200ms(bool stream, bool byDeadline)
    {
        var standIn = server.StandIn;
        var first = "first-" + Guid.NewGuid().ToString("N");
        var second = "second-" + Guid.NewGuid().ToString("N");
        using var client = new HttpClient { BaseAddress = server.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.Authorization = new("Bearer", server.AdminKey);
        using var goAway = new CancellationTokenSource();

        var sentAt = Stopwatch.GetTimestamp();
        var firstCall = CallAsync(client, DispatchServerFixture.Chat(first, 8000, stream, deadlineSeconds: byDeadline ? GiveUpAfter.TotalSeconds : null), stream, goAway.Token);
        var firstGeneration = await standIn.WaitForGenerationAsync(g => g.Prompt == first && g.StartedAt != 0);

        // The second request waits in LockN's queue: the backend has one slot, and it is taken.
        var secondCall = client.SendAsync(DispatchServerFixture.Chat(second, 3, stream: false));
        await WaitForQueueDepthAsync(1);

        long endedAt;
        if (byDeadline)
        {
            endedAt = sentAt + (long)(GiveUpAfter.TotalSeconds * Stopwatch.Frequency);
        }
        else
        {
            await Task.Delay(GiveUpAfter - Stopwatch.GetElapsedTime(sentAt));
            endedAt = Stopwatch.GetTimestamp();
            await goAway.CancelAsync();
        }

        using var secondResponse = await secondCall.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(HttpStatusCode.OK, secondResponse.StatusCode);
        var secondGeneration = await standIn.WaitForGenerationAsync(g => g.Prompt == second);
        await firstGeneration.Stopped.WaitAsync(TimeSpan.FromSeconds(5));

        if (byDeadline)
        {
            // LockN's deadline timer may fire a millisecond before the client's estimate of it; the first
            // generation stopping is the moment it acted.
            endedAt = Math.Min(endedAt, firstGeneration.StoppedAt);
        }

        var admittedAfterMs = Milliseconds(endedAt, secondGeneration.StartedAt);
        var stoppedAfterMs = Milliseconds(endedAt, firstGeneration.StoppedAt);
        output.WriteLine($"stream={stream} deadline={byDeadline}: first generation stopped {stoppedAfterMs:0.0} ms after the client gave up, " +
            $"{firstGeneration.TokensGenerated} of 8000 tokens; second request got the slot after {admittedAfterMs:0.0} ms");
        Assert.Equal(StopReason.ClientGone, firstGeneration.Reason);
        Assert.InRange(firstGeneration.TokensGenerated, 1, 7999);
        Assert.InRange(admittedAfterMs, 0, 200);

        var outcome = await firstCall;
        if (byDeadline)
        {
            // The client that set a deadline is told why its answer ended: 503 before any byte, an error event in a stream.
            Assert.Equal(stream ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable, outcome.Status);
            Assert.Contains("\"deadline_exceeded\"", outcome.Body, StringComparison.Ordinal);
        }

        var backend = await server.BackendAsync();
        Assert.Equal(0, backend.GetProperty("slots").GetProperty("busy").GetInt32());
    }

    private async Task WaitForQueueDepthAsync(int depth)
    {
        var deadline = Stopwatch.GetTimestamp() + (5 * Stopwatch.Frequency);
        while ((await server.BackendAsync()).GetProperty("queue").GetProperty("depth").GetInt32() != depth)
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, "The second request never queued.");
            await Task.Delay(5);
        }
    }

    private static double Milliseconds(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

    private sealed record CallOutcome(HttpStatusCode? Status, string Body);

    /// <summary>Sends and reads the answer (a stream event by event) until it ends or the client goes away.</summary>
    private static async Task<CallOutcome> CallAsync(HttpClient client, HttpRequestMessage request, bool stream, CancellationToken goAway)
    {
        HttpStatusCode? status = null;
        var body = new System.Text.StringBuilder();
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, goAway);
            status = response.StatusCode;
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(goAway));
            while (await reader.ReadLineAsync(goAway) is { } line)
            {
                body.AppendLine(line);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException or IOException)
        {
        }

        return new CallOutcome(status, body.ToString());
    }
}
