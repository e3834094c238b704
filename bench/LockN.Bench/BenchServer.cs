using System.Globalization;
using System.Net.Http.Json;
using LockN.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace LockN.Bench;

/// <summary>The real LockN server on 127.0.0.1 in this process, as a client on the same machine would see it.</summary>
internal sealed class BenchServer : IAsyncDisposable
{
    private readonly WebApplication app;

    private BenchServer(WebApplication app, HttpClient client)
    {
        this.app = app;
        Client = client;
    }

    public HttpClient Client { get; }

    /// <summary>Seeded as the admin key of every bench server.</summary>
    public static string AdminKey { get; } = Keys.ApiKeySecret.Generate().Key;

    public static async Task<BenchServer> StartAsync(BenchOptions options, int slots, IDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Models"] = options.ModelsDirectory,
            ["Data"] = Path.Combine(Path.GetTempPath(), "lockn-bench-" + Guid.NewGuid().ToString("N")),
            ["Transcription:DefaultModel"] = options.ModelId,
            ["Transcription:PullDefaultModel"] = "false",
            ["Transcription:Slots"] = slots.ToString(CultureInfo.InvariantCulture),
            ["Transcription:SpareWorkers"] = "0",
            ["Transcription:QueueLength"] = "64",
            ["Transcription:QueueTimeoutSeconds"] = "600",
            [Keys.KeysOptions.AdminKeyConfigurationKey] = AdminKey,
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var app = LockNServer.Build(settings, logging => logging.SetMinimumLevel(LogLevel.Warning).AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace)); // stdout is the report
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var client = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(10) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", AdminKey);
        while (!(await client.GetAsync("/health/ready")).IsSuccessStatusCode)
        {
            await Task.Delay(100);
        }

        return new BenchServer(app, client);
    }

    public async Task TranscribeAsync(Utterance utterance)
    {
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(utterance.FileBytes), "file", Path.GetFileName(utterance.Path) },
            { new StringContent("whisper-1"), "model" },
            { new StringContent("en"), "language" },
        };
        using var response = await Client.PostAsync("/v1/audio/transcriptions", form);
        response.EnsureSuccessStatusCode();
        _ = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
    }

    /// <summary>Peak resident memory (VmHWM) of this process and of its worker processes, from /proc.</summary>
    public static (long Self, long MaxWorker, int Workers) PeakResidentBytes()
    {
        var workers = ProcessMemory.ChildrenOf(Environment.ProcessId).Select(pid => ProcessMemory.Read(pid, "status").GetValueOrDefault("VmHWM:")).ToArray();
        return (ProcessMemory.Read(Environment.ProcessId, "status").GetValueOrDefault("VmHWM:"), workers.DefaultIfEmpty().Max(), workers.Length);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
