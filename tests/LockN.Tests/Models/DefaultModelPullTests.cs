using System.Net.Http.Json;
using System.Text.Json;
using LockN.Hosting;
using LockN.Models;
using LockN.Transcription;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LockN.Tests.Models;

/// <summary>What <c>serve</c> does when its default model is missing: pull it, or say in one line how to supply it.</summary>
public sealed class DefaultModelPullTests : IDisposable
{
    private readonly string emptyModels = Path.Combine(Path.GetTempPath(), "lockn-empty-models-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Without_pull_the_supplier_answers_with_the_offline_hint()
    {
        var directories = ModelDirectories.Parse(emptyModels);

        var problem = await Supplier(KnownWhisperModels.DefaultBaseUrl).TrySupplyAsync("whisper-base.en", directories, pull: false, CancellationToken.None);

        Assert.Equal(ModelDownloader.OfflineHint("whisper-base.en", directories), problem);
        Assert.False(Directory.Exists(emptyModels));
    }

    [Fact]
    public async Task A_failed_pull_answers_with_the_offline_hint_and_the_reason_in_one_line()
    {
        await using var server = await ModelFileServer.AnsweringAsync(404);
        var directories = ModelDirectories.Parse(emptyModels);

        var problem = await Supplier(server.BaseUrl.ToString()).TrySupplyAsync("whisper-tiny.en", directories, pull: true, CancellationToken.None);

        Assert.NotNull(problem);
        Assert.StartsWith(ModelDownloader.OfflineHint("whisper-tiny.en", directories), problem, StringComparison.Ordinal);
        Assert.Contains("404", problem, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', problem);
        Assert.Equal(["/ggml-tiny.en.bin"], server.Requests);
    }

    [Fact]
    public async Task Serve_without_its_default_model_reports_one_line_saying_how_to_pull_it_or_where_to_put_it()
    {
        var logs = new CapturedLogs();
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Models"] = emptyModels,
            ["Data"] = Path.Combine(emptyModels, "data"),
            ["Transcription:DefaultModel"] = "whisper-base.en",
            ["ModelDownload:BaseUrl"] = ModelFileServer.Unreachable().ToString(),
        };
        await using var app = LockNServer.Build(settings, logging => logging.AddProvider(logs));
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()) };

        var problem = await WaitForProblemAsync(client, p => p.Contains("Pull failed", StringComparison.Ordinal));
        await app.StopAsync();

        Assert.StartsWith($"Default model whisper-base.en is not in {emptyModels}. Pull it with `lockn models pull base.en` (needs internet) or put ggml-base.en.bin", problem, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', problem);
        Assert.Single(logs.Lines, line => line.Contains(problem, StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(emptyModels, "ggml-base.en.bin.partial")));
    }

    private static async Task<string> WaitForProblemAsync(HttpClient client, Func<string, bool> settled)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            using var response = await client.GetAsync("/health/ready");
            var problem = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("problem").GetString() ?? "";
            if (settled(problem) || DateTime.UtcNow > deadline)
            {
                return problem;
            }

            await Task.Delay(50);
        }
    }

    private static DefaultModelSupplier Supplier(string baseUrl) =>
        new(Options.Create(new ModelDownloadOptions { BaseUrl = baseUrl, TimeoutSeconds = 5 }), NullLogger<DefaultModelSupplier>.Instance);

    public void Dispose()
    {
        if (Directory.Exists(emptyModels))
        {
            Directory.Delete(emptyModels, recursive: true);
        }
    }
}
