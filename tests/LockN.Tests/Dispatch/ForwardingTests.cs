using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LockN.Tests.Dispatch;

/// <summary>Four slots, a token every 20 ms, a backend with its own API key, and a 1 MB body limit.</summary>
public sealed class ForwardingDispatchFixture : DispatchServerFixture
{
    public const string BackendKey = "backend-secret-0123456789";

    protected override int StandInSlots => 4;

    protected override TimeSpan TokenInterval => TimeSpan.FromMilliseconds(20);

    protected override IDictionary<string, string?> BackendSettings => new Dictionary<string, string?> { ["ApiKey"] = BackendKey };

    protected override IDictionary<string, string?> DispatchSettings => new Dictionary<string, string?> { ["MaxRequestBytes"] = (1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture) };
}

/// <summary>What passes through the front door: events as they come, bodies untouched, usage into the ledger, errors in OpenAI's shape.</summary>
public class ForwardingTests(ForwardingDispatchFixture server, ITestOutputHelper output) : IClassFixture<ForwardingDispatchFixture>
{
    [Fact]
    public async Task Streamed_tokens_reach_the_client_within_20ms_of_the_backend_sending_them()
    {
        var firstTokenDelays = new List<double>();
        var allDelays = new List<double>();
        for (var run = 0; run < 5; run++)
        {
            var marker = "latency-" + Guid.NewGuid().ToString("N");
            var (events, receivedAt) = await ReadEventsAsync(server.Client, DispatchServerFixture.Chat(marker, 8, stream: true));
            var generation = await server.StandIn.WaitForGenerationAsync(g => g.Prompt == marker);
            await generation.Stopped;

            // Match each received token to the moment the stand-in flushed it.
            var tokenEvents = events.Select((e, i) => (e, i)).Where(x => TokenIndex(x.e, generation.Id) is not null).ToList();
            Assert.Equal(generation.TokensGenerated, tokenEvents.Count);
            foreach (var (e, i) in tokenEvents)
            {
                var index = TokenIndex(e, generation.Id)!.Value;
                var delay = (receivedAt[i] - generation.TokenSentAt[index]) * 1000.0 / Stopwatch.Frequency;
                allDelays.Add(delay);
                if (index == 0)
                {
                    firstTokenDelays.Add(delay);
                }
            }
        }

        firstTokenDelays.Sort();
        allDelays.Sort();
        output.WriteLine($"first token: {string.Join(", ", firstTokenDelays.Select(d => d.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)))} ms; " +
            $"all tokens: median {allDelays[allDelays.Count / 2]:0.00} ms, max {allDelays[^1]:0.00} ms");
        Assert.InRange(firstTokenDelays[firstTokenDelays.Count / 2], double.MinValue, 20);
    }

    [Fact]
    public async Task Stream_gets_usage_chunk_only_when_the_client_asked_but_the_backend_is_always_asked()
    {
        var quiet = "quiet-" + Guid.NewGuid().ToString("N");
        var (quietEvents, _) = await ReadEventsAsync(server.Client, DispatchServerFixture.Chat(quiet, 3, stream: true));
        var asking = "asking-" + Guid.NewGuid().ToString("N");
        var (askingEvents, _) = await ReadEventsAsync(server.Client, DispatchServerFixture.Chat(asking, 3, stream: true, includeUsage: true));

        var quietGeneration = await server.StandIn.WaitForGenerationAsync(g => g.Prompt == quiet);
        var askingGeneration = await server.StandIn.WaitForGenerationAsync(g => g.Prompt == asking);
        Assert.True(quietGeneration.IncludeUsageAsked, "LockN asks the backend for usage on every stream");
        Assert.True(askingGeneration.IncludeUsageAsked);

        Assert.DoesNotContain(quietEvents, e => e.Contains("\"usage\"", StringComparison.Ordinal));
        Assert.Equal("[DONE]", quietEvents[^1]);
        Assert.Equal(3, quietEvents.Count(e => TokenIndex(e, quietGeneration.Id) is not null));

        var usage = JsonNode.Parse(askingEvents.Single(e => e.Contains("\"usage\"", StringComparison.Ordinal)))!["usage"]!;
        Assert.Equal(askingGeneration.TokensGenerated, usage["completion_tokens"]!.GetValue<int>());
        Assert.Equal("[DONE]", askingEvents[^1]);
    }

    [Fact]
    public async Task Tokens_in_and_out_reach_the_usage_ledger_per_key_and_model()
    {
        using var created = await server.Client.PostAsJsonAsync("/admin/keys", new { name = "chat-usage", scopes = new[] { "chat" } });
        var key = await created.Content.ReadFromJsonAsync<JsonElement>();
        using var client = new HttpClient { BaseAddress = server.BaseAddress };
        client.DefaultRequestHeaders.Authorization = new("Bearer", key.GetProperty("key").GetString());

        var marker = "ledger-" + Guid.NewGuid().ToString("N");
        await ReadEventsAsync(client, DispatchServerFixture.Chat(marker + "-s", 4, stream: true));
        await ReadEventsAsync(client, DispatchServerFixture.Chat(marker + "-u", 5, stream: true, includeUsage: true));
        using (var plain = await client.SendAsync(DispatchServerFixture.Chat(marker + "-p", 6, stream: false)))
        {
            Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        }

        using (var embedding = await client.PostAsJsonAsync("/v1/embeddings", new { model = DispatchServerFixture.Alias, input = marker + "-e" }))
        {
            Assert.Equal(HttpStatusCode.OK, embedding.StatusCode);
        }

        var generations = server.StandIn.Generations.Where(g => g.Prompt.StartsWith(marker, StringComparison.Ordinal)).ToList();
        Assert.Equal(4, generations.Count);
        var expectedIn = generations.Sum(g => g.PromptTokens);
        var expectedOut = generations.Sum(g => g.TokensGenerated);

        var keyId = key.GetProperty("id").GetString();
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        JsonElement totals;
        while (true)
        {
            var report = await server.Client.GetFromJsonAsync<JsonElement>("/admin/usage?group_by=key");
            totals = report.GetProperty("data").EnumerateArray().FirstOrDefault(g => g.GetProperty("group").GetString() == keyId);
            if (totals.ValueKind == JsonValueKind.Object && totals.GetProperty("requests").GetInt64() == 4)
            {
                break;
            }

            Assert.True(Stopwatch.GetTimestamp() < deadline, "the usage ledger did not get the four requests");
            await Task.Delay(100);
        }

        output.WriteLine($"ledger: {totals}; stand-in reported in {expectedIn}, out {expectedOut}");
        Assert.Equal(expectedIn, totals.GetProperty("tokens_in").GetInt64());
        Assert.Equal(expectedOut, totals.GetProperty("tokens_out").GetInt64());

        var byModel = await server.Client.GetFromJsonAsync<JsonElement>("/admin/usage?group_by=model");
        Assert.Contains(byModel.GetProperty("data").EnumerateArray(), g => g.GetProperty("group").GetString() == DispatchServerFixture.Model);
    }

    [Fact]
    public async Task Alias_is_sent_as_the_backend_model_id_with_the_backend_key_and_never_the_client_key()
    {
        var marker = "alias-" + Guid.NewGuid().ToString("N");
        using var response = await server.Client.SendAsync(DispatchServerFixture.Chat(marker, 2, stream: false, model: "CODER"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var generation = await server.StandIn.WaitForGenerationAsync(g => g.Prompt == marker);
        Assert.Equal(DispatchServerFixture.Model, generation.Model);
        Assert.Equal("Bearer " + ForwardingDispatchFixture.BackendKey, generation.Authorization);
        var answer = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(generation.Text, answer.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Multimodal_content_parts_reach_the_backend_unchanged()
    {
        var marker = "image-" + Guid.NewGuid().ToString("N");
        var image = "data:image/png;base64," + Convert.ToBase64String(RandomNumberGenerator(300_000));
        var messages = JsonNode.Parse(JsonSerializer.Serialize(new object[]
        {
            new { role = "system", content = "Describe images." },
            new
            {
                role = "user",
                content = new object[]
                {
                    new { type = "text", text = marker },
                    new { type = "image_url", image_url = new { url = image, detail = "high" } },
                },
            },
        }))!.AsArray();
        // messages first and model last, as the OpenAI SDK writes them: routing must not depend on the order.
        var body = new JsonObject { ["messages"] = messages, ["max_tokens"] = 2, ["temperature"] = 0.2, ["model"] = DispatchServerFixture.Model };
        using var response = await server.Client.PostAsync("/v1/chat/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var generation = await server.StandIn.WaitForGenerationAsync(g => g.Body?["messages"]?.ToJsonString().Contains(marker, StringComparison.Ordinal) == true);
        // Exactly as sent, but for the two properties that make every chat request stream upstream with usage.
        var expected = body.DeepClone().AsObject();
        expected["stream"] = true;
        expected["stream_options"] = new JsonObject { ["include_usage"] = true };
        Assert.True(JsonNode.DeepEquals(expected, generation.Body), "the backend must get the request as sent, streamed");
    }

    [Fact]
    public async Task Completions_stream_and_embeddings_are_forwarded_too()
    {
        var marker = "completion-" + Guid.NewGuid().ToString("N");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = JsonContent.Create(new { model = DispatchServerFixture.Model, prompt = marker, max_tokens = 3, stream = true }),
        };
        var (events, _) = await ReadEventsAsync(server.Client, request);
        var generation = await server.StandIn.WaitForGenerationAsync(g => g.Prompt == marker);
        Assert.Equal("/v1/completions", generation.Path);
        Assert.Equal(3, events.Count(e => TokenIndex(e, generation.Id) is not null));

        using var embedding = await server.Client.PostAsJsonAsync("/v1/embeddings", new { model = DispatchServerFixture.Model, input = "hello" });
        Assert.Equal(HttpStatusCode.OK, embedding.StatusCode);
        var vector = (await embedding.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("data")[0].GetProperty("embedding");
        Assert.Equal(3, vector.GetArrayLength());
    }

    [Fact]
    public async Task Models_lists_speech_and_backend_models_together()
    {
        var models = await server.Client.GetFromJsonAsync<JsonElement>("/v1/models");
        var ids = models.GetProperty("data").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!, m => m.GetProperty("owned_by").GetString());

        Assert.Contains("whisper-tiny.en", ids.Keys);
        Assert.Equal("coder", ids[DispatchServerFixture.Model]);
        Assert.Equal("coder", ids[DispatchServerFixture.Alias]);
        using var one = await server.Client.GetAsync($"/v1/models/{DispatchServerFixture.Model}");
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
    }

    [Theory]
    [InlineData("{\"messages\":[]}", 400, "missing_model", "model")]
    [InlineData("{\"model\":42,\"messages\":[]}", 400, "invalid_type", "model")]
    [InlineData("{\"model\":\"qwen2.5-coder-7b\",\"messages\":[", 400, "invalid_json", null)]
    [InlineData("[1,2,3]", 400, "invalid_json", null)]
    [InlineData("", 400, "invalid_json", null)]
    [InlineData("{\"model\":\"qwen2.5-coder-7b\",\"stream\":\"yes\"}", 400, "invalid_type", "stream")]
    [InlineData("{\"model\":\"qwen2.5-coder-7b\",\"stream\":true,\"stream_options\":5}", 400, "invalid_type", "stream_options")]
    [InlineData("{\"model\":\"no-such-model\",\"messages\":[]}", 404, "model_not_found", "model")]
    [InlineData("{\"model\":\"whisper-tiny.en\",\"messages\":[]}", 404, "model_not_found", "model")]
    public async Task Bad_request_gets_an_openai_error_and_never_reaches_the_backend(string body, int status, string code, string? param)
    {
        var before = server.StandIn.Generations.Count;
        using var response = await server.Client.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(status, (int)response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(before, server.StandIn.Generations.Count);
    }

    [Fact]
    public async Task Body_that_is_not_json_gets_415()
    {
        using var response = await server.Client.PostAsync("/v1/chat/completions", new StringContent("model=coder", Encoding.UTF8, "application/x-www-form-urlencoded"));

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("unsupported_media_type", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Body_over_the_limit_gets_413(bool withLength)
    {
        var json = "{\"model\":\"coder\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('a', 1_200_000) + "\"}]}";
        HttpContent content = withLength
            ? new StringContent(json, Encoding.UTF8, "application/json")
            : new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(json))); // chunked: no length to refuse up front
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await server.Client.PostAsync("/v1/chat/completions", content);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("payload_too_large", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Key_without_the_chat_scope_gets_403()
    {
        using var created = await server.Client.PostAsJsonAsync("/admin/keys", new { name = "speech-only", scopes = new[] { "transcribe" } });
        var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString();
        using var request = DispatchServerFixture.Chat("no-scope", 1, stream: false);
        request.Headers.Authorization = new("Bearer", key);

        using var response = await server.AnonymousClient.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.DoesNotContain(server.StandIn.Generations, g => g.Prompt == "no-scope");
    }

    private static byte[] RandomNumberGenerator(int length) => System.Security.Cryptography.RandomNumberGenerator.GetBytes(length);

    /// <summary>The token index of a chunk from generation <paramref name="id"/> ("t{id}.{i} "), or null for other events.</summary>
    private static int? TokenIndex(string data, int id)
    {
        var prefix = $"\"t{id}.";
        var at = data.IndexOf(prefix, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var rest = data[(at + prefix.Length)..];
        return int.Parse(rest[..rest.IndexOf(' ', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Reads an SSE answer; returns each event's data and the Stopwatch time it arrived.</summary>
    private static async Task<(List<string> Events, List<long> ReceivedAt)> ReadEventsAsync(HttpClient client, HttpRequestMessage request)
    {
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<string>();
        var receivedAt = new List<long>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                receivedAt.Add(Stopwatch.GetTimestamp());
                events.Add(line["data: ".Length..]);
            }
        }

        return (events, receivedAt);
    }
}
