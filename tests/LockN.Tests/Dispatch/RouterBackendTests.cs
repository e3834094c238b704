using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LockN.Tests.Dispatch;

/// <summary>
/// A real llama-server in router mode (<c>--models-dir</c>) as a URL backend with no models configured: LockN lists the
/// models of the router's <c>/models</c> with their load state, routes by them, and shows the model loaded after use.
/// </summary>
[Collection(typeof(Transcription.SlotDisciplineCollection))]
public class RouterBackendTests(RouterBackendTests.RouterFixture server, ITestOutputHelper output) : IClassFixture<RouterBackendTests.RouterFixture>
{
    private const string RouterModel = "tiny-random-llama"; // the router names a model after its file

    public sealed class RouterFixture : LockNServerFixture
    {
        public RealLlamaServer Router { get; private set; } = null!;

        protected override bool WaitsForWhisper => false;

        protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
        {
            ["Dispatch:Backends:0:Name"] = "router",
            ["Dispatch:Backends:0:Url"] = Router.BaseAddress.ToString(),
            ["Dispatch:HealthCheckIntervalSeconds"] = "0.2",
        };

        public override async ValueTask InitializeAsync()
        {
            Router = await RealLlamaServer.StartRouterAsync(CancellationToken.None);
            await base.InitializeAsync();
        }

        public override async ValueTask DisposeAsync()
        {
            await base.DisposeAsync();
            await Router.DisposeAsync();
        }
    }

    [Fact]
    public async Task Models_of_a_router_are_listed_with_their_load_state_and_served_through_it()
    {
        var before = await WaitForModelAsync(status => status is "unloaded" or "loaded");
        output.WriteLine($"before: {before}");
        var models = await server.Client.GetFromJsonAsync<JsonElement>("/v1/models");
        Assert.Contains(models.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == RouterModel && m.GetProperty("owned_by").GetString() == "router");

        foreach (var stream in new[] { false, true })
        {
            using var response = await server.Client.PostAsJsonAsync("/v1/chat/completions", new
            {
                model = RouterModel,
                messages = new[] { new { role = "user", content = "hello" } },
                max_tokens = 3,
                stream,
            });
            var body = await response.Content.ReadAsStringAsync();
            output.WriteLine($"stream={stream}: {(int)response.StatusCode} {body[..Math.Min(body.Length, 200)]}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var after = await WaitForModelAsync(status => status == "loaded");
        output.WriteLine($"after: {after}");

        using var unknown = await server.Client.PostAsJsonAsync("/v1/chat/completions", new { model = "not-behind-the-router", messages = new[] { new { role = "user", content = "x" } } });
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    private async Task<JsonElement> WaitForModelAsync(Func<string, bool> status)
    {
        var deadline = Stopwatch.GetTimestamp() + (20 * Stopwatch.Frequency);
        while (true)
        {
            var backend = await server.Client.GetFromJsonAsync<JsonElement>("/admin/backends/router");
            if (backend.TryGetProperty("router_models", out var models) && models.ValueKind == JsonValueKind.Array
                && models.EnumerateArray().FirstOrDefault(m => m.GetProperty("id").GetString() == RouterModel) is { ValueKind: JsonValueKind.Object } model
                && status(model.GetProperty("status").GetString()!))
            {
                return backend;
            }

            Assert.True(Stopwatch.GetTimestamp() < deadline, $"the router's model never showed the expected state: {backend}");
            await Task.Delay(50);
        }
    }
}
