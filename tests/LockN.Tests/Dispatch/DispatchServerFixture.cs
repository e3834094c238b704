using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace LockN.Tests.Dispatch;

/// <summary>
/// A llama-server stand-in and a LockN server with it as backend <c>coder</c> (model <c>qwen2.5-coder-7b</c>, alias
/// <c>coder</c>). The slot count is not configured: LockN reads it from the stand-in's /props.
/// </summary>
public class DispatchServerFixture : LockNServerFixture
{
    protected override bool WaitsForWhisper => false; // no test here needs a transcript before its first request

    public const string Model = "qwen2.5-coder-7b";
    public const string Alias = "coder";

    public LlamaServerStandIn StandIn { get; private set; } = null!;

    protected virtual int StandInSlots => 1;

    protected virtual TimeSpan TokenInterval => TimeSpan.FromMilliseconds(5);

    /// <summary>Backend settings on top of the defaults below (keys relative to Dispatch:Backends:0).</summary>
    protected virtual IDictionary<string, string?> BackendSettings => new Dictionary<string, string?>();

    protected virtual IDictionary<string, string?> DispatchSettings => new Dictionary<string, string?>();

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = new Dictionary<string, string?>
            {
                ["Dispatch:Backends:0:Name"] = "coder",
                ["Dispatch:Backends:0:Url"] = StandIn.BaseAddress.ToString(),
                ["Dispatch:Backends:0:Models:0"] = Model,
                ["Dispatch:Backends:0:Models:1"] = Alias,
                ["Dispatch:Backends:0:QueueLength"] = "4",
                ["Dispatch:Backends:0:DeadlineSeconds"] = "120",
                ["Dispatch:HealthCheckIntervalSeconds"] = "0.2",
                ["Dispatch:HealthCheckTimeoutSeconds"] = "1",
            };
            foreach (var (key, value) in BackendSettings)
            {
                settings["Dispatch:Backends:0:" + key] = value;
            }

            foreach (var (key, value) in DispatchSettings)
            {
                settings["Dispatch:" + key] = value;
            }

            return settings;
        }
    }

    public override async ValueTask InitializeAsync()
    {
        StandIn = await LlamaServerStandIn.StartAsync(StandInSlots, TokenInterval);
        await base.InitializeAsync();
        await WaitForBackendAsync("ready", TimeSpan.FromSeconds(10));
    }

    public async Task<JsonElement> BackendAsync()
    {
        using var response = await Client.GetAsync("/admin/backends");
        response.EnsureSuccessStatusCode();
        var list = await response.Content.ReadFromJsonAsync<JsonElement>();
        return list.GetProperty("data")[0];
    }

    public async Task<JsonElement> WaitForBackendAsync(string state, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var backend = await BackendAsync();
            if (backend.GetProperty("state").GetString() == state)
            {
                return backend;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"Backend did not become {state}: {backend}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>A chat request whose user message carries <paramref name="marker"/>, so the stand-in's record of it can be found.</summary>
    public static HttpRequestMessage Chat(string marker, int maxTokens, bool stream, string model = Model, double? deadlineSeconds = null, bool? includeUsage = null)
    {
        var body = new Dictionary<string, object?>
        {
            ["model"] = model,
            ["messages"] = new[] { new { role = "user", content = marker } },
            ["max_tokens"] = maxTokens,
            ["stream"] = stream,
        };
        if (includeUsage is { } include)
        {
            body["stream_options"] = new { include_usage = include };
        }

        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
        };
        if (deadlineSeconds is { } seconds)
        {
            request.Headers.Add("X-LockN-Deadline-Seconds", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return request;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await StandIn.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
