using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace LockN.Tests.Readme;

/// <summary>
/// Pastes README.md's shell blocks in order (conventions in <see cref="ReadmeScript"/>) into bash in a fresh
/// checkout: an empty directory holding only a link to <c>src</c> (where the built <c>lockn</c> is), with
/// <c>../shared</c> beside it, so <c>data/</c> starts empty as on a fresh clone. What the test changes, and why:
/// <list type="bullet">
/// <item><c>127.0.0.1:8080</c> and <c>127.0.0.1:8082</c> become free ports (tests run beside other servers), and
/// <c>LOCKN_URLS</c> says the first to <c>serve</c> and <c>lockn stream</c>, as a reader's default would;</item>
/// <item><c>dotnet run --project src/LockN --</c> becomes the <c>lockn</c> it runs, built with the tests, to spare a
/// build check per start;</item>
/// <item><c>whisper-1</c> is whisper-tiny.en (<c>LOCKN_Transcription__DefaultModel</c>), to keep the run short on
/// a small machine; the README's commands are otherwise run as written.</item>
/// </list>
/// </summary>
public sealed class ReadmeTests : IDisposable
{
    private static readonly TimeSpan RunLimit = TimeSpan.FromMinutes(4);
    private readonly string root = Path.Combine(Path.GetTempPath(), "lockn-readme-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Every_shell_block_of_the_readme_works_pasted_in_order_on_a_fresh_checkout()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var built = Path.Combine(TestAssets.RepositoryRoot, "src", "LockN", "bin", configuration, "net10.0");
        Assert.True(File.Exists(Path.Combine(built, "lockn")), $"the README puts {built} on the PATH, but there is no lockn in it");

        var checkout = Path.Combine(root, "lockn");
        Directory.CreateDirectory(checkout);
        Directory.CreateSymbolicLink(Path.Combine(checkout, "src"), Path.Combine(TestAssets.RepositoryRoot, "src"));
        Directory.CreateSymbolicLink(Path.Combine(root, "shared"), TestAssets.Shared);

        var blocks = ReadmeScript.ShellBlocks(await File.ReadAllTextAsync(Path.Combine(TestAssets.RepositoryRoot, "README.md"), TestContext.Current.CancellationToken));
        Assert.Contains(blocks, b => b.StartsServer && b.Line > blocks[0].Line); // the Dispatch section restarts the service
        var service = $"127.0.0.1:{FreePort()}";
        var backend = $"127.0.0.1:{FreePort()}";
        var script = ReadmeScript.Write(blocks, root, text => text
            .Replace("127.0.0.1:8080", service, StringComparison.Ordinal)
            .Replace("127.0.0.1:8082", backend, StringComparison.Ordinal)
            .Replace("--port 8082", "--port " + backend.Split(':')[1], StringComparison.Ordinal)
            .Replace("dotnet run --project src/LockN --", "\"$PWD/src/LockN/bin/Debug/net10.0/lockn\"", StringComparison.Ordinal)
            .Replace("bin/Debug/", $"bin/{configuration}/", StringComparison.Ordinal));
        var pids = Path.Combine(root, "pids");

        var startInfo = new ProcessStartInfo("bash", [script])
        {
            WorkingDirectory = checkout,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var name in startInfo.Environment.Keys.Where(k => k.StartsWith("LOCKN_", StringComparison.OrdinalIgnoreCase) || k.Contains("__", StringComparison.Ordinal)).ToList())
        {
            startInfo.Environment.Remove(name); // a reader's shell has none of the test run's settings
        }

        startInfo.Environment["LOCKN_URLS"] = "http://" + service;
        startInfo.Environment["LOCKN_Transcription__DefaultModel"] = "whisper-tiny.en";
        startInfo.Environment["README_TEST_URL"] = "http://" + service;
        startInfo.Environment["README_TEST_PIDS"] = pids;

        var wall = Stopwatch.StartNew();
        using var bash = Process.Start(startInfo)!;
        bash.StandardInput.Close();
        var stdout = bash.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = bash.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        var finished = false;
        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            limit.CancelAfter(RunLimit);
            await bash.WaitForExitAsync(limit.Token);
            finished = true;
        }
        catch (OperationCanceledException)
        {
            bash.Kill(entireProcessTree: true);
        }
        finally
        {
            await StopProcessGroupsAsync(pids);
        }

        var timings = string.Join('\n', (await stdout).Split('\n').Where(l => l.StartsWith("README test: block", StringComparison.Ordinal)));
        var output = $"after {wall.Elapsed.TotalSeconds:0} s\n{timings}\n--- stdout\n{Tail(await stdout)}\n--- stderr\n{Tail(await stderr)}{ServerLogs()}";
        TestContext.Current.TestOutputHelper?.WriteLine(output);
        Assert.True(finished, $"the README's blocks did not finish within {RunLimit.TotalMinutes} minutes, {output}");
        Assert.True(bash.ExitCode == 0, $"the README's blocks failed (exit {bash.ExitCode}), {output}");
        Assert.Contains("README test: every block ran", await stdout, StringComparison.Ordinal);
    }

    /// <summary>Whatever the script left running (the service, llama-server) goes, even when the script was killed.</summary>
    private static async Task StopProcessGroupsAsync(string pids)
    {
        if (!File.Exists(pids))
        {
            return;
        }

        foreach (var group in (await File.ReadAllLinesAsync(pids)).Where(l => int.TryParse(l, CultureInfo.InvariantCulture, out _)))
        {
            using var kill = Process.Start(new ProcessStartInfo("kill", ["-KILL", "--", "-" + group.Trim()]) { RedirectStandardError = true, UseShellExecute = false })!;
            await kill.WaitForExitAsync();
        }
    }

    private string ServerLogs() => string.Concat(Directory.EnumerateFiles(root, "server-*.log").Order(StringComparer.Ordinal)
        .Select(log => $"\n--- {Path.GetFileName(log)}\n{Tail(File.ReadAllText(log))}"));

    private static string Tail(string text, int lines = 40) => string.Join('\n', text.TrimEnd().Split('\n').TakeLast(lines));

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        // The links first, by unlink: never anything they point to (the repository's src, the shared assets).
        foreach (var link in new[] { Path.Combine(root, "lockn", "src"), Path.Combine(root, "shared") })
        {
            if (new FileInfo(link).LinkTarget is not null)
            {
                File.Delete(link);
            }
        }

        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
