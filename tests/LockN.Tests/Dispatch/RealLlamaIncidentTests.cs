using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LockN.Tests.Dispatch;

/// <summary>
/// The incident against the real llama-server, run by LockN: a request for 8,000 tokens abandoned after 1 s (client gone,
/// or its deadline passed), streamed or not. Every request goes upstream as a stream, so llama-server stops at its next
/// token; its own <c>/slots</c>, polled directly, must show the slot free within 200 ms, and the request queued behind
/// must be answered within 200 ms. Also: the assembled plain answer equals llama-server's own, field for field.
/// </summary>
[Collection(typeof(Transcription.SlotDisciplineCollection))]
public class RealLlamaIncidentTests(ManagedDispatchFixture server, ITestOutputHelper output) : IClassFixture<ManagedDispatchFixture>
{
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(1);

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public async Task One_slot_abandoned_generation_stops_at_once_and_the_next_request_is_served_within_200ms(bool stream, bool byDeadline)
    {
        var (_, port) = await server.ProcessAsync("one");
        using var llama = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await WaitForIdleSlotsAsync(llama); // a task of the case before, still stopping, must not be taken for this one's
        using var client = new HttpClient { BaseAddress = server.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.Authorization = new("Bearer", server.AdminKey);
        using var goAway = new CancellationTokenSource();

        var sentAt = Stopwatch.GetTimestamp();
        var firstCall = CallAsync(client, ManagedDispatchFixture.Chat("one", "abandoned", 8000, stream, byDeadline ? GiveUpAfter.TotalSeconds : null), goAway.Token);
        var task = await WaitForBusySlotAsync(llama);

        var secondCall = client.SendAsync(ManagedDispatchFixture.Chat("one", "next", 3, stream: false));
        await WaitForQueueAsync("one", 1);

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

        var freedAt = await WaitForTaskToLeaveSlotsAsync(llama, task.IdTask);
        using var second = await secondCall.WaitAsync(TimeSpan.FromSeconds(20));
        var answeredAt = Stopwatch.GetTimestamp();
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);

        var freedMs = Milliseconds(Math.Min(endedAt, freedAt), freedAt);
        var answeredMs = Milliseconds(endedAt, answeredAt);
        var log = await server.LogAsync("one");
        var cancelled = log.Any(l => l.Contains("cancel task", StringComparison.Ordinal) && l.Contains($"id_task = {task.IdTask}", StringComparison.Ordinal));
        output.WriteLine($"stream={stream} deadline={byDeadline}: llama-server slot free {freedMs:0.0} ms after the client gave up (task {task.IdTask}, " +
            $"cancel in its log: {cancelled}); the queued request answered {answeredMs:0.0} ms after");
        Assert.True(cancelled, "llama-server's log shows the abandoned task cancelled:\n" + string.Join('\n', log.TakeLast(15)));
        Assert.InRange(freedMs, 0, 200);
        Assert.InRange(answeredMs, 0, 200);

        var outcome = await firstCall;
        if (byDeadline)
        {
            Assert.Equal(stream ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable, outcome.Status);
            Assert.Contains("\"deadline_exceeded\"", outcome.Body, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The case that still failed through LockN with plain upstream requests: two slots, the other one generating the
    /// whole time, <c>/slots</c> polled at 10 Hz (each poll restarts llama-server's wait for a non-stream result).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Two_slots_with_another_request_generating_and_slots_polled_at_10Hz_the_abandoned_slot_is_free_within_200ms(bool stream)
    {
        var (_, port) = await server.ProcessAsync("two");
        using var llama = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await WaitForIdleSlotsAsync(llama); // a task of the case before, still stopping, must not be taken for this one's
        using var client = new HttpClient { BaseAddress = server.BaseAddress, Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.Authorization = new("Bearer", server.AdminKey);
        using var stopPolling = new CancellationTokenSource();
        var polls = 0;
        var poller = Task.Run(async () =>
        {
            while (!stopPolling.IsCancellationRequested)
            {
                using var response = await llama.GetAsync("/slots", CancellationToken.None);
                polls++;
                await Task.Delay(100, CancellationToken.None);
            }
        });

        using var keepGoing = new CancellationTokenSource();
        var other = CallAsync(client, ManagedDispatchFixture.Chat("two", "the other one", 16000, stream: true), keepGoing.Token); // generating throughout
        var otherTask = await WaitForBusySlotAsync(llama);

        using var goAway = new CancellationTokenSource();
        var abandoned = CallAsync(client, ManagedDispatchFixture.Chat("two", "abandoned", 8000, stream), goAway.Token);
        var abandonedTask = await WaitForBusySlotAsync(llama, except: otherTask.IdTask);
        var queued = client.SendAsync(ManagedDispatchFixture.Chat("two", "queued", 3, stream: false));
        await WaitForQueueAsync("two", 1);

        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var goneBefore = server.Logs.Lines.Count(l => l.Contains("Client went away; request to backend two", StringComparison.Ordinal));
        var endedAt = Stopwatch.GetTimestamp();
        await goAway.CancelAsync();
        var freedAt = await WaitForTaskToLeaveSlotsAsync(llama, abandonedTask.IdTask);
        var lockNSawItGo = server.Logs.Lines.Where(l => l.Contains("Client went away; request to backend two", StringComparison.Ordinal)).Skip(goneBefore).FirstOrDefault();
        using var queuedResponse = await queued.WaitAsync(TimeSpan.FromSeconds(20));
        var answeredAt = Stopwatch.GetTimestamp();
        var otherStillGenerating = (await SlotsAsync(llama)).Any(s => s.IdTask == otherTask.IdTask && s.IsProcessing);

        await keepGoing.CancelAsync();
        await other;
        await abandoned;
        await stopPolling.CancelAsync();
        await poller;

        var freedMs = Milliseconds(endedAt, freedAt);
        var answeredMs = Milliseconds(endedAt, answeredAt);
        output.WriteLine($"stream={stream}: abandoned slot free {freedMs:0.0} ms after the client left; queued request answered after {answeredMs:0.0} ms; " +
            $"the other request still generating: {otherStillGenerating}; {polls} /slots polls; LockN: {lockNSawItGo ?? "(did not see the client go)"}");
        Assert.Equal(HttpStatusCode.OK, queuedResponse.StatusCode);
        Assert.True(otherStillGenerating, "the other request must have been generating throughout, or the case is not the incident's");
        Assert.InRange(freedMs, 0, 200);
        Assert.InRange(answeredMs, 0, 200);
    }

    [Theory]
    [InlineData("/v1/chat/completions")]
    [InlineData("/v1/completions")]
    public async Task Plain_answer_assembled_from_the_upstream_stream_equals_llama_servers_own_field_for_field(string path)
    {
        var (_, port) = await server.ProcessAsync("one");
        using var llama = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        JsonObject Body(string model)
        {
            var body = new JsonObject { ["model"] = model, ["max_tokens"] = 24, ["temperature"] = 0, ["seed"] = 42, ["cache_prompt"] = false };
            if (path.Contains("chat", StringComparison.Ordinal))
            {
                body["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Say something." });
            }
            else
            {
                body["prompt"] = "Once upon a time";
            }

            return body;
        }

        var modelPath = (await llama.GetFromJsonAsync<JsonElement>("/v1/models")).GetProperty("data")[0].GetProperty("id").GetString()!;
        using var direct = await llama.PostAsJsonAsync(path, Body(modelPath));
        using var through = await server.Client.PostAsJsonAsync(path, Body(ManagedDispatchFixture.Model("one")));
        Assert.Equal(HttpStatusCode.OK, direct.StatusCode);
        Assert.Equal(HttpStatusCode.OK, through.StatusCode);
        Assert.Equal("application/json", through.Content.Headers.ContentType?.MediaType);

        var directAnswer = JsonNode.Parse(await direct.Content.ReadAsStringAsync())!.AsObject();
        var assembled = JsonNode.Parse(await through.Content.ReadAsStringAsync())!.AsObject();
        output.WriteLine($"direct:    {directAnswer.ToJsonString()}\nassembled: {assembled.ToJsonString()}");
        Assert.Equal(directAnswer.Select(p => p.Key), assembled.Select(p => p.Key)); // the same fields, in the same order
        foreach (var varying in new[] { "id", "created", "timings" })
        {
            Assert.NotNull(assembled[varying]);
            directAnswer.Remove(varying);
            assembled.Remove(varying);
        }

        Assert.True(JsonNode.DeepEquals(directAnswer, assembled), "the assembled answer must equal llama-server's own but for ids and timings");
        Assert.True(assembled["usage"]!["completion_tokens"]!.GetValue<int>() > 0);
    }

    [Fact]
    public async Task The_OpenAI_SDK_gets_llama_servers_own_answer_plain_and_streamed()
    {
        var (_, port) = await server.ProcessAsync("one");
        using var llama = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var sdk = new OpenAI.Chat.ChatClient(ManagedDispatchFixture.Model("one"), new System.ClientModel.ApiKeyCredential(server.AdminKey),
            new OpenAI.OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });
        var options = new OpenAI.Chat.ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0 }; // greedy: the seed does not matter
        OpenAI.Chat.ChatMessage[] messages = [new OpenAI.Chat.UserChatMessage("Hello there")];

        // The same request straight to llama-server, plain: what the SDK must get through LockN.
        using var direct = await llama.PostAsJsonAsync("/v1/chat/completions", new
        {
            messages = new[] { new { role = "user", content = "Hello there" } },
            max_tokens = 12,
            temperature = 0,
        });
        var expected = JsonNode.Parse(await direct.Content.ReadAsStringAsync())!;
        var expectedText = expected["choices"]![0]!["message"]!["content"]!.GetValue<string>();

        OpenAI.Chat.ChatCompletion completion = await sdk.CompleteChatAsync(messages, options);
        var streamed = new StringBuilder();
        await foreach (var update in sdk.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }
        }

        output.WriteLine($"direct: {expectedText} | sdk: {completion.Content[0].Text} | sdk streamed: {streamed}");
        Assert.Equal(expectedText, completion.Content[0].Text);
        Assert.Equal(expectedText, streamed.ToString());
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(expected["usage"]!["completion_tokens"]!.GetValue<int>(), completion.Usage.OutputTokenCount);
        Assert.Equal(expected["usage"]!["prompt_tokens"]!.GetValue<int>(), completion.Usage.InputTokenCount);
    }

    [Fact]
    public async Task Usage_tokens_in_the_ledger_are_llama_servers_own_counts()
    {
        using var created = await server.Client.PostAsJsonAsync("/admin/keys", new { name = "real-usage", scopes = new[] { "chat" } });
        var key = await created.Content.ReadFromJsonAsync<JsonElement>();
        using var client = new HttpClient { BaseAddress = server.BaseAddress };
        client.DefaultRequestHeaders.Authorization = new("Bearer", key.GetProperty("key").GetString());

        var expectedIn = 0L;
        var expectedOut = 0L;
        foreach (var stream in new[] { false, true })
        {
            using var request = ManagedDispatchFixture.Chat("one", "count me", 17, stream);
            if (stream)
            {
                // The client asks for usage too, so it sees the counts the ledger must hold.
                var body = JsonNode.Parse(await request.Content!.ReadAsStringAsync())!.AsObject();
                body["stream_options"] = new JsonObject { ["include_usage"] = true };
                request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            }

            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"stream={stream}: {(int)response.StatusCode} {text}");
            Assert.True(!stream || text.Contains("\"usage\"", StringComparison.Ordinal), $"no usage in the stream: {text}");
            var usageJson = stream
                ? text.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal) && l.Contains("\"usage\"", StringComparison.Ordinal)).Select(l => JsonNode.Parse(l[6..])!["usage"]!).Single()
                : JsonNode.Parse(text)!["usage"]!;
            expectedIn += usageJson["prompt_tokens"]!.GetValue<long>();
            expectedOut += usageJson["completion_tokens"]!.GetValue<long>();
            Assert.Equal(17, usageJson["completion_tokens"]!.GetValue<int>());
        }

        var keyId = key.GetProperty("id").GetString();
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (true)
        {
            var report = await server.Client.GetFromJsonAsync<JsonElement>("/admin/usage?group_by=key");
            var totals = report.GetProperty("data").EnumerateArray().FirstOrDefault(g => g.GetProperty("group").GetString() == keyId);
            if (totals.ValueKind == JsonValueKind.Object && totals.GetProperty("requests").GetInt64() == 2)
            {
                output.WriteLine($"ledger {totals}; llama-server said in {expectedIn}, out {expectedOut}");
                Assert.Equal(expectedIn, totals.GetProperty("tokens_in").GetInt64());
                Assert.Equal(expectedOut, totals.GetProperty("tokens_out").GetInt64());
                return;
            }

            Assert.True(Stopwatch.GetTimestamp() < deadline, "the usage ledger did not get both requests");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Slot_counts_come_from_llama_servers_props()
    {
        foreach (var (name, expected) in new[] { ("one", 1), ("two", 2) })
        {
            var (_, port) = await server.ProcessAsync(name);
            using var llama = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var props = await llama.GetFromJsonAsync<JsonElement>("/props");
            var slots = (await server.BackendAsync(name)).GetProperty("slots");
            Assert.Equal(expected, props.GetProperty("total_slots").GetInt32());
            Assert.Equal(expected, slots.GetProperty("total").GetInt32());
            Assert.Equal("props", slots.GetProperty("source").GetString());
        }
    }

    [Fact]
    public async Task Image_message_reaches_the_text_only_model_which_refuses_the_image_in_its_own_words()
    {
        var before = (await server.LogAsync("one")).Count(l => l.Contains("image input is not supported", StringComparison.Ordinal));
        var image = "data:image/png;base64," + Convert.ToBase64String(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3 });
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject
            {
                ["role"] = "user",
                ["content"] = new JsonArray(
                    new JsonObject { ["type"] = "text", ["text"] = "What is in this image?" },
                    new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = image } }),
            }),
            ["max_tokens"] = 4,
            ["model"] = ManagedDispatchFixture.Model("one"),
        };
        using var response = await server.Client.PostAsJsonAsync("/v1/chat/completions", body);
        var answer = await response.Content.ReadFromJsonAsync<JsonElement>();
        output.WriteLine($"{(int)response.StatusCode}: {answer}");

        // The image part got as far as llama-server's multimodal check: the request reached it whole.
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Contains("image input is not supported", answer.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        var after = (await server.LogAsync("one")).Count(l => l.Contains("image input is not supported", StringComparison.Ordinal));
        Assert.Equal(before + 1, after);
    }

    internal sealed record Slot(int Id, bool IsProcessing, int IdTask);

    internal static async Task<IReadOnlyList<Slot>> SlotsAsync(HttpClient llama)
    {
        var slots = await llama.GetFromJsonAsync<JsonElement>("/slots");
        return [.. slots.EnumerateArray().Select(s => new Slot(s.GetProperty("id").GetInt32(), s.GetProperty("is_processing").GetBoolean(), s.TryGetProperty("id_task", out var task) ? task.GetInt32() : -1))]; // a slot never used has no id_task
    }

    internal static async Task<Slot> WaitForBusySlotAsync(HttpClient llama, int? except = null)
    {
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (true)
        {
            if ((await SlotsAsync(llama)).FirstOrDefault(s => s.IsProcessing && s.IdTask != except) is { } busy)
            {
                return busy;
            }

            Assert.True(Stopwatch.GetTimestamp() < deadline, "llama-server never started the request");
            await Task.Delay(5);
        }
    }

    internal static async Task WaitForIdleSlotsAsync(HttpClient llama)
    {
        var deadline = Stopwatch.GetTimestamp() + (30 * Stopwatch.Frequency);
        while ((await SlotsAsync(llama)).Any(s => s.IsProcessing))
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, "llama-server stayed busy with an earlier request");
            await Task.Delay(5);
        }
    }

    /// <summary>Polls llama-server's /slots until no slot is working on <paramref name="idTask"/>; when that was seen.</summary>
    internal static async Task<long> WaitForTaskToLeaveSlotsAsync(HttpClient llama, int idTask)
    {
        var deadline = Stopwatch.GetTimestamp() + (30 * Stopwatch.Frequency);
        while (true)
        {
            if (!(await SlotsAsync(llama)).Any(s => s.IsProcessing && s.IdTask == idTask))
            {
                return Stopwatch.GetTimestamp();
            }

            Assert.True(Stopwatch.GetTimestamp() < deadline, $"llama-server kept working on task {idTask}");
            await Task.Delay(2);
        }
    }

    private async Task WaitForQueueAsync(string name, int depth)
    {
        var deadline = Stopwatch.GetTimestamp() + (5 * Stopwatch.Frequency);
        while ((await server.BackendAsync(name)).GetProperty("queue").GetProperty("depth").GetInt32() != depth)
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, "The request never queued.");
            await Task.Delay(5);
        }
    }

    private static double Milliseconds(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

    internal sealed record CallOutcome(HttpStatusCode? Status, string Body);

    /// <summary>Sends and reads the answer (a stream line by line) until it ends or the client goes away.</summary>
    internal static async Task<CallOutcome> CallAsync(HttpClient client, HttpRequestMessage request, CancellationToken goAway)
    {
        HttpStatusCode? status = null;
        var body = new StringBuilder();
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
