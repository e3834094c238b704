using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;

namespace LockN.Bench;

/// <summary>
/// `lockn serve` as a process of its own on 127.0.0.1, so that its memory, its children and its death are its own.
/// Settings are passed as LOCKN_ environment variables (Section:Key becomes LOCKN_Section__Key).
/// </summary>
internal sealed class ServeProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly ConcurrentQueue<string> output;

    private ServeProcess(Process process, HttpClient client, ConcurrentQueue<string> output)
    {
        this.process = process;
        this.output = output;
        Client = client;
    }

    /// <summary>Authenticated with the admin key.</summary>
    public HttpClient Client { get; }

    public Uri BaseAddress => Client.BaseAddress!;

    public int Pid => process.Id;

    public bool HasExited => process.HasExited;

    /// <param name="models">The models option; by default the whole of ../shared/models (Whisper, YAMNet, Silero VAD).</param>
    public static async Task<ServeProcess> StartAsync(BenchOptions options, string dataDirectory, IReadOnlyDictionary<string, string?>? settings = null, string? models = null)
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var startInfo = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "lockn")) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { "serve", "--urls", $"http://127.0.0.1:{port}", "--data", dataDirectory, "--models", models ?? Path.Combine(options.SharedDirectory, "models") })
        {
            startInfo.ArgumentList.Add(arg);
        }

        startInfo.Environment["LOCKN_ADMIN_KEY"] = BenchServer.AdminKey;
        startInfo.Environment["LOCKN_Transcription__DefaultModel"] = options.ModelId;
        startInfo.Environment["LOCKN_Transcription__PullDefaultModel"] = "false";
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            startInfo.Environment["LOCKN_" + key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        // The last lines of its output, to say why when it does not become ready.
        var output = new ConcurrentQueue<string>();
        void Keep(string? line)
        {
            if (line is null)
            {
                return;
            }

            output.Enqueue(line);
            while (output.Count > 200 && output.TryDequeue(out _))
            {
            }
        }

        var process = Process.Start(startInfo)!;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(60) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", BenchServer.AdminKey);
        var served = new ServeProcess(process, client, output);
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                using var ready = await client.GetAsync("/health/ready");
                if (ready.IsSuccessStatusCode)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (process.HasExited || Stopwatch.GetElapsedTime(started) > TimeSpan.FromMinutes(3))
            {
                var tail = served.OutputTail(20);
                var exited = process.HasExited;
                await served.DisposeAsync();
                throw new InvalidOperationException($"lockn serve did not become ready{(exited ? " (it exited)" : "")}:\n{tail}");
            }

            await Task.Delay(100);
        }

        // YAMNet loads in the background at start (Classification:LoadAtStart): wait for it, so its load is part of the baseline.
        await Task.Delay(3000);
        return served;
    }

    public string OutputTail(int lines) => string.Join('\n', output.TakeLast(lines));

    /// <summary>
    /// kill -9 of the server alone, as a crash would be; then, after a second, of whichever of its children (Whisper
    /// workers, llama-server, ffmpeg) are still alive, so that none is left behind. Returns the names of those.
    /// </summary>
    public async Task<IReadOnlyList<string>> KillServerThenChildrenAsync()
    {
        var children = ProcessMemory.DescendantsOf(process.Id);
        process.Kill(entireProcessTree: false);
        await process.WaitForExitAsync();
        await Task.Delay(1000);
        var alive = new List<string>();
        foreach (var pid in children)
        {
            try
            {
                using var child = Process.GetProcessById(pid);
                if (ProcessMemory.IsRunning(pid))
                {
                    alive.Add(ProcessMemory.NameOf(pid) ?? "?");
                    child.Kill();
                }
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                // Gone already.
            }
        }

        return alive;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        process.Dispose();
    }
}
