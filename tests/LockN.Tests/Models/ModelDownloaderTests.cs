using System.Security.Cryptography;
using LockN.Models;

namespace LockN.Tests.Models;

/// <summary>The downloader against a real local HTTP server: the public location cannot be reached from tests.</summary>
public sealed class ModelDownloaderTests : IDisposable
{
    private const int PayloadBytes = 1024 * 1024;
    private readonly string directory = Path.Combine(Path.GetTempPath(), "lockn-pull-" + Guid.NewGuid().ToString("N"));
    private readonly byte[] payload = RandomNumberGenerator.GetBytes(PayloadBytes);
    private readonly ModelDownloader downloader = new(TimeSpan.FromSeconds(10));

    private KnownWhisperModel Model => ModelOf(payload);

    private string Target => Path.Combine(directory, Model.FileName);

    [Fact]
    public async Task Pull_writes_the_served_bytes_under_the_model_file_name_and_leaves_no_partial()
    {
        await using var server = await ModelFileServer.ServingAsync(payload);

        var result = await DownloadAsync(server.BaseUrl);

        Assert.True(result.Succeeded, result.Message);
        Assert.Equal(Target, result.Path);
        Assert.Equal(payload, await File.ReadAllBytesAsync(Target));
        Assert.Equal(["/ggml-test.bin"], server.Requests);
        AssertOnlyFiles(Model.FileName);
    }

    [Fact]
    public async Task Progress_is_reported_from_zero_up_to_the_content_length()
    {
        await using var server = await ModelFileServer.ServingAsync(payload);
        var progress = new RecordingProgress();

        await DownloadAsync(server.BaseUrl, progress);

        Assert.Equal(new ModelDownloadProgress(0, PayloadBytes), progress.Reports[0]);
        Assert.Equal(new ModelDownloadProgress(PayloadBytes, PayloadBytes), progress.Reports[^1]);
        Assert.True(progress.Reports.Count > 2, "progress should move during the download");
        Assert.Equal(progress.Reports.Select(r => r.BytesDone).Order(), progress.Reports.Select(r => r.BytesDone));
    }

    [Fact]
    public async Task Pull_without_content_length_succeeds_with_progress_of_unknown_total()
    {
        await using var server = await ModelFileServer.ServingAsync(payload, sendLength: false);
        var progress = new RecordingProgress();

        var result = await DownloadAsync(server.BaseUrl, progress);

        Assert.True(result.Succeeded, result.Message);
        Assert.All(progress.Reports, r => Assert.Null(r.TotalBytes));
        Assert.Equal(PayloadBytes, progress.Reports[^1].BytesDone);
    }

    [Fact]
    public async Task Checksum_mismatch_is_refused_naming_expected_and_actual_and_writes_nothing()
    {
        var other = RandomNumberGenerator.GetBytes(PayloadBytes);
        await using var server = await ModelFileServer.ServingAsync(other);

        var result = await DownloadAsync(server.BaseUrl);

        Assert.Equal(ModelDownloadError.ChecksumMismatch, result.Error);
        Assert.Contains(Model.Sha1, result.Message, StringComparison.Ordinal);
        Assert.Contains(ModelOf(other).Sha1, result.Message, StringComparison.Ordinal);
        AssertOnlyFiles();
    }

    [Fact]
    public async Task A_failed_pull_leaves_an_existing_file_untouched()
    {
        Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(Target, "the old file");
        await using var server = await ModelFileServer.ServingAsync(RandomNumberGenerator.GetBytes(PayloadBytes));

        var result = await DownloadAsync(server.BaseUrl);

        Assert.Equal(ModelDownloadError.ChecksumMismatch, result.Error);
        Assert.Equal("the old file", await File.ReadAllTextAsync(Target));
        AssertOnlyFiles(Model.FileName);
    }

    [Fact]
    public async Task Http_404_fails_with_the_status_and_writes_nothing()
    {
        await using var server = await ModelFileServer.AnsweringAsync(404);

        var result = await DownloadAsync(server.BaseUrl);

        Assert.Equal(ModelDownloadError.HttpStatus, result.Error);
        Assert.Contains("404", result.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any());
    }

    [Fact]
    public async Task Connection_dropped_midway_fails_and_leaves_no_partial()
    {
        await using var server = await ModelFileServer.BreakingOffAfterAsync(payload, PayloadBytes / 2);

        var result = await DownloadAsync(server.BaseUrl);

        Assert.False(result.Succeeded);
        Assert.Contains(result.Error, new ModelDownloadError?[] { ModelDownloadError.Network, ModelDownloadError.Truncated });
        AssertOnlyFiles();
    }

    [Fact]
    public async Task Cancellation_midway_throws_and_leaves_no_partial()
    {
        await using var server = await ModelFileServer.StallingAfterAsync(payload, PayloadBytes / 2);
        using var cancel = new CancellationTokenSource();
        var progress = new RecordingProgress(p =>
        {
            if (p.BytesDone > 0)
            {
                cancel.Cancel();
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => DownloadAsync(server.BaseUrl, progress, cancel.Token));

        AssertOnlyFiles();
    }

    [Fact]
    public async Task A_stalled_server_times_out_instead_of_hanging_and_leaves_no_partial()
    {
        await using var server = await ModelFileServer.StallingAfterAsync(payload, PayloadBytes / 4);
        using var impatient = new ModelDownloader(TimeSpan.FromSeconds(1));
        Assert.True(ModelDownloader.TryResolveUrl(server.BaseUrl.ToString(), Model, out var url));

        var result = await impatient.DownloadAsync(Model, url, directory, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(ModelDownloadError.TimedOut, result.Error);
        AssertOnlyFiles();
    }

    [Fact]
    public async Task An_unreachable_server_is_a_network_error()
    {
        var result = await DownloadAsync(ModelFileServer.Unreachable());

        Assert.Equal(ModelDownloadError.Network, result.Error);
        Assert.DoesNotContain('\n', result.Message!);
    }

    [Theory]
    [InlineData("base.en")]
    [InlineData("whisper-base.en")]
    [InlineData("ggml-base.en.bin")]
    [InlineData("BASE.EN")]
    public void A_model_is_found_by_short_name_model_id_or_file_name(string name)
    {
        var model = KnownWhisperModels.Find(name);

        Assert.NotNull(model);
        Assert.Equal("ggml-base.en.bin", model.FileName);
        Assert.Equal("whisper-base.en", model.ModelId);
    }

    [Theory]
    [InlineData("nonsense")]
    [InlineData("whisper-small")]
    [InlineData("")]
    public void An_unknown_name_finds_no_model(string name) => Assert.Null(KnownWhisperModels.Find(name));

    [Fact]
    public void The_download_url_is_the_base_url_with_the_file_name_appended()
    {
        Assert.True(ModelDownloader.TryResolveUrl("https://example.org/models", KnownWhisperModels.Find("tiny")!, out var url));
        Assert.Equal("https://example.org/models/ggml-tiny.bin", url.ToString());
        Assert.True(ModelDownloader.TryResolveUrl(KnownWhisperModels.DefaultBaseUrl, KnownWhisperModels.Find("base.en")!, out url));
        Assert.Equal("https://huggingface.co/ggerganov/whisper.cpp/resolve/main/ggml-base.en.bin", url.ToString());
        Assert.False(ModelDownloader.TryResolveUrl("file:///etc/", KnownWhisperModels.Find("tiny")!, out _));
        Assert.False(ModelDownloader.TryResolveUrl("not a url", KnownWhisperModels.Find("tiny")!, out _));
    }

    [Fact]
    public void Messages_show_urls_without_credentials_or_query()
    {
        var shown = ModelDownloader.Redact(new Uri("https://user:secret@cdn.example.org/ggml-base.en.bin?X-Signature=abc#f"));

        Assert.Equal("https://cdn.example.org/ggml-base.en.bin", shown);
    }

    [Fact]
    public void The_offline_hint_is_one_line_with_the_pull_command_and_the_directory()
    {
        var directories = ModelDirectories.Parse("/srv/models;/opt/models");

        var hint = ModelDownloader.OfflineHint("whisper-base.en", directories);

        Assert.Equal(
            "Default model whisper-base.en is not in /srv/models, /opt/models. Pull it with `lockn models pull base.en` (needs internet) "
            + "or put ggml-base.en.bin (from https://huggingface.co/ggerganov/whisper.cpp) into /srv/models.",
            hint);
    }

    [Fact]
    public void The_offline_hint_for_a_model_that_cannot_be_pulled_says_where_to_put_it()
    {
        var hint = ModelDownloader.OfflineHint("whisper-small", ModelDirectories.Parse("/srv/models"));

        Assert.DoesNotContain("lockn models pull", hint, StringComparison.Ordinal);
        Assert.Contains("put ggml-small.bin", hint, StringComparison.OrdinalIgnoreCase);
    }

    private async Task<ModelDownloadResult> DownloadAsync(Uri baseUrl, IProgress<ModelDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Assert.True(ModelDownloader.TryResolveUrl(baseUrl.ToString(), Model, out var url));
        return await downloader.DownloadAsync(Model, url, directory, progress, cancellationToken);
    }

    private void AssertOnlyFiles(params string[] names)
    {
        string[] present = Directory.Exists(directory) ? [.. Directory.EnumerateFileSystemEntries(directory).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal)] : [];
        Assert.Equal([.. names.Order(StringComparer.Ordinal)], present);
    }

#pragma warning disable CA5350 // The catalogue's checksums are SHA-1 because whisper.cpp publishes SHA-1.
    private static KnownWhisperModel ModelOf(byte[] bytes) =>
        new("test", "ggml-test.bin", Convert.ToHexStringLower(SHA1.HashData(bytes)), "1 MiB");
#pragma warning restore CA5350

    public void Dispose()
    {
        downloader.Dispose();
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Collects reports synchronously, in order (<see cref="Progress{T}"/> would post them to the thread pool).</summary>
    private sealed class RecordingProgress(Action<ModelDownloadProgress>? onReport = null) : IProgress<ModelDownloadProgress>
    {
        public List<ModelDownloadProgress> Reports { get; } = [];

        public void Report(ModelDownloadProgress value)
        {
            Reports.Add(value);
            onReport?.Invoke(value);
        }
    }
}
