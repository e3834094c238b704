using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Storage;
using LockN.Tests.Storage;

namespace LockN.Tests.Dispatch;

/// <summary>
/// URL backends added, drained and removed at run time through one node's /admin/backends, seen by another node on the
/// same PostgreSQL database, and by a node started afterwards; requests through the second node reach the real
/// llama-server behind the backend.
/// </summary>
[Collection(typeof(Transcription.SlotDisciplineCollection))]
public class RuntimeBackendTests(PostgresServer postgres, ITestOutputHelper output)
{
    private const string Model = "tiny-url";

    private sealed class Node(string connectionString, string name) : LockNServerFixture
    {
        protected override bool WaitsForWhisper => false;

        protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
        {
            [LockNDatabase.ConfigurationKey] = connectionString,
            ["Node"] = name,
            ["Dispatch:SyncIntervalSeconds"] = "0.2",
            ["Dispatch:HealthCheckIntervalSeconds"] = "0.2",
        };
    }

    [Fact]
    public async Task Backend_added_drained_and_removed_on_one_node_is_seen_by_another_node_and_by_a_restart()
    {
        await using var llama = await RealLlamaServer.StartAsync(CancellationToken.None);
        var database = await postgres.CreateDatabaseAsync();
        await using var a = new Node(database, "node-a");
        await using var b = new Node(database, "node-b");
        await a.InitializeAsync();
        await b.InitializeAsync();

        using (var added = await a.Client.PostAsJsonAsync("/admin/backends", new { name = "gpu2", url = llama.BaseAddress.ToString(), models = new[] { Model } }))
        {
            Assert.Equal(HttpStatusCode.Created, added.StatusCode);
            var report = await added.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("database", report.GetProperty("source").GetString());
        }

        var seenAt = Stopwatch.GetTimestamp();
        var onB = await WaitForStateAsync(b, "gpu2", "ready");
        output.WriteLine($"node b saw the new backend ready after {Stopwatch.GetElapsedTime(seenAt).TotalMilliseconds:0} ms: {onB}");
        Assert.Equal(1, onB.GetProperty("slots").GetProperty("total").GetInt32()); // read from the real server's /props
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(b));
        Assert.Contains((await b.Client.GetFromJsonAsync<JsonElement>("/v1/models")).GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == Model);

        using (var drained = await a.Client.PostAsync("/admin/backends/gpu2/drain", null))
        {
            Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
        }

        await WaitForStateAsync(b, "gpu2", "draining");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await ChatAsync(b));

        using (var resumed = await a.Client.PostAsync("/admin/backends/gpu2/start", null))
        {
            Assert.Equal(HttpStatusCode.OK, resumed.StatusCode);
        }

        await WaitForStateAsync(b, "gpu2", "ready");
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(b));

        // A node started now reads the backend from the database.
        await using (var c = new Node(database, "node-c"))
        {
            await c.InitializeAsync();
            await WaitForStateAsync(c, "gpu2", "ready");
            Assert.Equal(HttpStatusCode.OK, await ChatAsync(c));
        }

        using (var removed = await a.Client.DeleteAsync("/admin/backends/gpu2"))
        {
            Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
            Assert.True((await removed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("deleted").GetBoolean());
        }

        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while ((await b.Client.GetAsync("/admin/backends/gpu2")).StatusCode != HttpStatusCode.NotFound)
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, "node b still has the removed backend");
            await Task.Delay(50);
        }

        using var gone = await b.Client.SendAsync(Chat());
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        Assert.Equal("model_not_found", (await gone.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("""{"url":"http://127.0.0.1:9","models":["m"]}""", "name")]
    [InlineData("""{"name":"x","url":"ftp://host","models":["m"]}""", "url")]
    [InlineData("""{"name":"x","url":"http://user:secret@host:8080","models":["m"]}""", "url")]
    [InlineData("""{"name":"x","url":"http://127.0.0.1:9","models":[]}""", "models")]
    [InlineData("""{"name":"x","url":"http://127.0.0.1:9","models":["m"],"api_key":"sk-123"}""", "api_key")]
    [InlineData("""{"name":"x","url":"http://127.0.0.1:9","models":"m"}""", "models")]
    public async Task Bad_backend_definitions_are_refused_naming_the_field(string body, string param)
    {
        var database = await postgres.CreateDatabaseAsync();
        await using var a = new Node(database, "node-a");
        await a.InitializeAsync();
        using var response = await a.Client.PostAsync("/admin/backends", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        output.WriteLine(error.ToString());
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.DoesNotContain("secret", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    private static HttpRequestMessage Chat() => new(HttpMethod.Post, "/v1/chat/completions")
    {
        Content = JsonContent.Create(new { model = Model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 2 }),
    };

    private static async Task<HttpStatusCode> ChatAsync(LockNServerFixture node)
    {
        using var response = await node.Client.SendAsync(Chat());
        return response.StatusCode;
    }

    private static async Task<JsonElement> WaitForStateAsync(LockNServerFixture node, string name, string state)
    {
        var deadline = Stopwatch.GetTimestamp() + (10 * Stopwatch.Frequency);
        while (true)
        {
            using var response = await node.Client.GetAsync($"/admin/backends/{name}");
            if (response.IsSuccessStatusCode && await response.Content.ReadFromJsonAsync<JsonElement>() is var backend && backend.GetProperty("state").GetString() == state)
            {
                return backend;
            }

            Assert.True(Stopwatch.GetTimestamp() < deadline, $"backend {name} did not become {state} on this node");
            await Task.Delay(20);
        }
    }
}
