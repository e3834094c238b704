using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LockN.Tests.Dispatch;

/// <summary>
/// LockN running the real llama-server of ../shared/llama itself, as an operator would declare it
/// (<c>Dispatch:ManagedServers:N:*</c>): <c>one</c> (one slot) and <c>two</c> (two slots) start with LockN; <c>lazy-a</c>,
/// <c>lazy-b</c> (600 MiB each under a 1,000 MiB budget), <c>idle</c> (unloaded after 2 s) and <c>slow</c> (a context
/// so large that loading takes about a second) start on demand.
/// </summary>
public class ManagedDispatchFixture : LockNServerFixture
{
    public const double StallSeconds = 4;
    public const double IdleUnloadSeconds = 2;

    protected override bool WaitsForWhisper => false;

    public static string LlamaModels => Path.Combine(TestAssets.Shared, "llama", "models");

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = new Dictionary<string, string?>
            {
                ["Models"] = TestAssets.Models + ";" + LlamaModels,
                ["Dispatch:LlamaServerPath"] = RealLlamaServer.Executable,
                ["Dispatch:HealthCheckIntervalSeconds"] = "0.5",
                ["Dispatch:StallSeconds"] = StallSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Dispatch:MaxResidentMemoryMiB"] = "1000",
                ["Dispatch:CapacityWaitSeconds"] = "2",
                ["Dispatch:StopGraceSeconds"] = "3",
                ["Dispatch:RestartBackoffSeconds"] = "0.2",
                // The tests poll /admin/backends every 20 ms for up to 30 s: more than a key's default 600 a minute.
                ["Keys:DefaultRequestsPerMinute"] = "100000",
            };
            Managed(settings, 0, "one", "always", parallel: 1, context: 8192);
            Managed(settings, 1, "two", "always", parallel: 2, context: 32768); // 16,384 per slot: room for a 16,000-token answer
            Managed(settings, 2, "lazy-a", "on_demand", parallel: 1, context: 2048, memoryMiB: 600);
            Managed(settings, 3, "lazy-b", "on_demand", parallel: 1, context: 8192, memoryMiB: 600);
            Managed(settings, 4, "idle", "on_demand", parallel: 1, context: 2048, idleUnload: IdleUnloadSeconds);
            Managed(settings, 5, "slow", "on_demand", parallel: 1, context: 1_000_000);
            Managed(settings, 6, "broken", "always", parallel: 1, context: 2048, model: BrokenModel);
            Managed(settings, 7, "missing", "on_demand", parallel: 1, context: 2048, model: "no-such-model.gguf");
            return settings;
        }
    }

    /// <summary>The model id clients ask for to reach managed server <paramref name="name"/>.</summary>
    public static string Model(string name) => "tiny-" + name;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        await WaitForStateAsync("one", "ready", TimeSpan.FromSeconds(30));
        await WaitForStateAsync("two", "ready", TimeSpan.FromSeconds(30));
    }

    public async Task<JsonElement> BackendAsync(string name) =>
        await Client.GetFromJsonAsync<JsonElement>($"/admin/backends/{name}");

    public async Task<JsonElement> WaitForStateAsync(string name, string state, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var backend = await BackendAsync(name);
            if (backend.GetProperty("state").GetString() == state)
            {
                return backend;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"Backend {name} did not become {state}: {backend}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>The pid and port of a running managed server, from /admin/backends.</summary>
    public async Task<(int Pid, int Port)> ProcessAsync(string name)
    {
        var process = (await BackendAsync(name)).GetProperty("process");
        return (process.GetProperty("pid").GetInt32(), process.GetProperty("port").GetInt32());
    }

    /// <summary>A chat request to managed server <paramref name="name"/>; <paramref name="maxTokens"/> are generated in full (ignore_eos).</summary>
    public static HttpRequestMessage Chat(string name, string text, int maxTokens, bool stream, double? deadlineSeconds = null)
    {
        var body = new JsonObject
        {
            ["model"] = Model(name),
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text }),
            ["max_tokens"] = maxTokens,
            ["ignore_eos"] = true,
            ["stream"] = stream,
        };
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        if (deadlineSeconds is { } seconds)
        {
            request.Headers.Add("X-LockN-Deadline-Seconds", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return request;
    }

    /// <summary>The managed server's log, as an admin reads it.</summary>
    public async Task<IReadOnlyList<string>> LogAsync(string name)
    {
        var log = await Client.GetFromJsonAsync<JsonElement>($"/admin/backends/{name}/logs");
        return [.. log.GetProperty("lines").EnumerateArray().Select(l => l.GetString()!)];
    }

    /// <summary>A file named like a model that is not one: llama-server exits at once on it, every time.</summary>
    public string BrokenModel { get; } = CreateBrokenModel();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        File.Delete(BrokenModel);
        GC.SuppressFinalize(this);
    }

    private static string CreateBrokenModel()
    {
        var path = Path.Combine(Path.GetTempPath(), $"lockn-broken-{Guid.NewGuid():N}.gguf");
        File.WriteAllText(path, "not a GGUF file");
        return path;
    }

    private static void Managed(Dictionary<string, string?> settings, int i, string name, string start, int parallel, int context, int memoryMiB = 0, double idleUnload = 0, string model = RealLlamaServer.ModelFile)
    {
        var key = $"Dispatch:ManagedServers:{i}:";
        settings[key + "Name"] = name;
        settings[key + "Model"] = model;
        settings[key + "Models:0"] = Model(name);
        settings[key + "Start"] = start;
        settings[key + "Parallel"] = parallel.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings[key + "ContextSize"] = context.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings[key + "Threads"] = "1"; // two threads on a two-core machine spin against each other (../shared/llama/README.md)
        settings[key + "MemoryMiB"] = memoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings[key + "IdleUnloadSeconds"] = idleUnload.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings[key + "DeadlineSeconds"] = "60";
    }
}
