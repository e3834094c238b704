using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using LockN.Tests.Models;

namespace LockN.Tests.Cli;

public sealed class ModelsCommandTests : IDisposable
{
    private readonly string directory = Path.Combine(Path.GetTempPath(), "lockn-cli-models-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Pull_of_an_unknown_model_exits_2_and_lists_the_known_ones()
    {
        var result = await LocknProcess.RunAsync(["models", "pull", "nonsense", "--models", directory]);

        Assert.Equal(2, result.ExitCode);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.Contains("nonsense", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("tiny.en, tiny, base.en, base", result.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task Pull_of_bytes_that_are_not_the_model_exits_1_with_a_checksum_message_and_writes_nothing()
    {
        await using var server = await ModelFileServer.ServingAsync(RandomNumberGenerator.GetBytes(256 * 1024));

        var result = await LocknProcess.RunAsync(["models", "pull", "tiny.en", "--base-url", server.BaseUrl.ToString(), "--models", directory]);

        Assert.Equal(1, result.ExitCode);
        var error = Assert.Single(result.Stderr.Trim().Split('\n'), line => line.StartsWith("lockn:", StringComparison.Ordinal));
        Assert.Contains("checksum mismatch", error, StringComparison.Ordinal);
        Assert.Contains("c78c86eb1a8faa21b369bcd33207cc90d64ae9df", error, StringComparison.Ordinal);
        Assert.Equal(["/ggml-tiny.en.bin"], server.Requests);
        Assert.Empty(Directory.Exists(directory) ? Directory.EnumerateFileSystemEntries(directory) : []);
    }

    [Fact]
    public async Task Pull_reads_the_download_location_from_the_environment()
    {
        await using var server = await ModelFileServer.AnsweringAsync(404);

        var result = await LocknProcess.RunAsync(["models", "pull", "whisper-base", "--models", directory],
            new Dictionary<string, string> { ["LOCKN_ModelDownload__BaseUrl"] = server.BaseUrl.ToString() });

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("404", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(["/ggml-base.bin"], server.Requests);
    }

    [Fact]
    public async Task Pull_without_a_network_says_where_to_put_the_file_by_hand_and_which_mirror_setting_to_use()
    {
        var closedPort = ClosedPort();

        var result = await LocknProcess.RunAsync(["models", "pull", "base.en", "--models", directory],
            new Dictionary<string, string> { ["LOCKN_ModelDownload__BaseUrl"] = $"http://127.0.0.1:{closedPort}/" });

        Assert.Equal(1, result.ExitCode);
        var error = Assert.Single(result.Stderr.Trim().Split('\n'), line => line.StartsWith("lockn:", StringComparison.Ordinal));
        Assert.Contains($"127.0.0.1:{closedPort}", error, StringComparison.Ordinal);
        Assert.Contains($"put ggml-base.en.bin (from https://huggingface.co/ggerganov/whisper.cpp) into {directory} by hand", error, StringComparison.Ordinal);
        Assert.Contains("ModelDownload:BaseUrl (--base-url) at a mirror", error, StringComparison.Ordinal);
        Assert.Empty(Directory.Exists(directory) ? Directory.EnumerateFileSystemEntries(directory) : []);
    }

    private static int ClosedPort()
    {
        // A port that was just free: nothing listens there, so a connection is refused as without a network.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Pull_stopped_by_a_signal_exits_130_and_leaves_no_partial()
    {
        await using var server = await ModelFileServer.StallingAfterAsync(RandomNumberGenerator.GetBytes(1024 * 1024), 256 * 1024);
        var partial = Path.Combine(directory, "ggml-tiny.en.bin.partial");
        var startInfo = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "lockn"), ["models", "pull", "tiny.en", "--base-url", server.BaseUrl.ToString(), "--models", directory])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        for (var waited = 0; !File.Exists(partial) && waited < 300; waited++)
        {
            await Task.Delay(100);
        }

        Assert.True(File.Exists(partial), "the download should have started");
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(process.ExitCode == 130, await stdout + await stderr);
        Assert.Contains("cancelled", await stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(directory));
    }

    [Fact]
    public async Task List_shows_the_downloadable_models_and_which_are_on_disk()
    {
        Directory.CreateDirectory(directory);
        await File.WriteAllBytesAsync(Path.Combine(directory, "ggml-tiny.en.bin"), [0]);

        var result = await LocknProcess.RunAsync(["models", "list", "--models", directory]);

        Assert.True(result.ExitCode == 0, result.Stderr);
        var lines = result.Stdout.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("tiny.en ", StringComparison.Ordinal) && l.Contains("75 MiB", StringComparison.Ordinal) && l.EndsWith(Path.Combine(directory, "ggml-tiny.en.bin"), StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("base.en ", StringComparison.Ordinal) && l.EndsWith(" -", StringComparison.Ordinal));
    }

    public void Dispose()
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
