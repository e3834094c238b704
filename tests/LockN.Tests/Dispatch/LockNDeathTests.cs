using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Keys;

namespace LockN.Tests.Dispatch;

/// <summary>
/// The real <c>lockn serve</c> process with two managed llama-servers, one of them mid-request, killed with SIGKILL:
/// no handler of LockN's runs, yet no llama-server may survive it (an orphan would hold its GPU memory for good).
/// </summary>
[Collection(typeof(Transcription.SlotDisciplineCollection))]
public class LockNDeathTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Kill_9_of_LockN_leaves_no_llama_server_running()
    {
        var port = RealLlamaServer.FreePort();
        var data = Path.Combine(Path.GetTempPath(), "lockn-death-" + Guid.NewGuid().ToString("N"));
        var adminKey = ApiKeySecret.Generate().Key;
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "lockn"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = TestAssets.RepositoryRoot,
        };
        foreach (var argument in (string[])["serve", "--urls", $"http://127.0.0.1:{port}", "--models", $"{TestAssets.Models};{ManagedDispatchFixture.LlamaModels}", "--data", data])
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["LOCKN_DB"] = "";
        start.Environment["LOCKN_ADMIN_KEY"] = adminKey;
        start.Environment["LOCKN_Transcription__PullDefaultModel"] = "false";
        start.Environment["LOCKN_Transcription__DefaultModel"] = "whisper-tiny.en";
        start.Environment["LOCKN_Transcription__SpareWorkers"] = "0";
        start.Environment["LOCKN_Transcription__WarmUp"] = "false";
        start.Environment["LOCKN_Dispatch__LlamaServerPath"] = RealLlamaServer.Executable;
        foreach (var (i, name) in new[] { (0, "first"), (1, "second") })
        {
            start.Environment[$"LOCKN_Dispatch__ManagedServers__{i}__Name"] = name;
            start.Environment[$"LOCKN_Dispatch__ManagedServers__{i}__Model"] = RealLlamaServer.ModelFile;
            start.Environment[$"LOCKN_Dispatch__ManagedServers__{i}__Models__0"] = "tiny-" + name;
            start.Environment[$"LOCKN_Dispatch__ManagedServers__{i}__ContextSize"] = "8192";
            start.Environment[$"LOCKN_Dispatch__ManagedServers__{i}__Threads"] = "1";
        }

        using var lockn = Process.Start(start)!;
        var stderr = lockn.StandardError.ReadToEndAsync();
        var stdout = lockn.StandardOutput.ReadToEndAsync();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = Timeout.InfiniteTimeSpan };
        client.DefaultRequestHeaders.Authorization = new("Bearer", adminKey);
        try
        {
            var pids = await WaitForReadyPidsAsync(client, lockn, 2);
            output.WriteLine($"lockn {lockn.Id}; llama-servers {string.Join(", ", pids)}: {Ps(pids)}");
            foreach (var pid in pids)
            {
                Assert.Equal(lockn.Id, ParentOf(pid)); // started by LockN itself: no shell or wrapper left between them
            }

            // One of them is generating for a client when LockN dies.
            using var request = ManagedDispatchFixture.Chat("first", "in flight", 8000, stream: true);
            using var inFlight = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, inFlight.StatusCode);

            lockn.Kill(); // SIGKILL to LockN alone, not its process tree
            await lockn.WaitForExitAsync();
            var killedAt = Stopwatch.GetTimestamp();
            foreach (var pid in pids)
            {
                await ManagedServerTests.WaitUntilDeadAsync(pid);
            }

            output.WriteLine($"every llama-server gone {Stopwatch.GetElapsedTime(killedAt).TotalMilliseconds:0} ms after LockN was killed; ps: {Ps(pids)}");
            Assert.Equal("", Ps(pids));
        }
        finally
        {
            if (!lockn.HasExited)
            {
                lockn.Kill(entireProcessTree: true);
            }

            output.WriteLine((await stderr).Split('\n').TakeLast(5).Aggregate("", (a, l) => a + l + "\n") + (await stdout).Length);
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    private static async Task<int[]> WaitForReadyPidsAsync(HttpClient client, Process lockn, int count)
    {
        var deadline = Stopwatch.GetTimestamp() + (90 * Stopwatch.Frequency);
        while (true)
        {
            Assert.False(lockn.HasExited, "lockn serve exited");
            try
            {
                var list = await client.GetFromJsonAsync<JsonElement>("/admin/backends");
                var ready = list.GetProperty("data").EnumerateArray().Where(b => b.GetProperty("state").GetString() == "ready").ToArray();
                if (ready.Length == count)
                {
                    return [.. ready.Select(b => b.GetProperty("process").GetProperty("pid").GetInt32())];
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            Assert.True(Stopwatch.GetTimestamp() < deadline, "the managed servers did not become ready");
            await Task.Delay(100);
        }
    }

    /// <summary>What <c>ps</c> shows of these pids (empty when none runs; a zombie, already dead, shows as Z and counts).</summary>
    private static string Ps(IEnumerable<int> pids)
    {
        var ps = Process.Start(new ProcessStartInfo("ps", ["-o", "pid=,ppid=,stat=,comm=", "-p", string.Join(',', pids)]) { RedirectStandardOutput = true })!;
        var text = ps.StandardOutput.ReadToEnd();
        ps.WaitForExit();
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return string.Join("; ", lines.Where(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, _, var stat, ..] && !stat.StartsWith('Z')));
    }

    private static int ParentOf(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
    }
}
