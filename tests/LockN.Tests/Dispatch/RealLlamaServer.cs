using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

namespace LockN.Tests.Dispatch;

/// <summary>
/// The real llama.cpp <c>llama-server</c> from ../shared/llama with its tiny random-weight model, on a free port of
/// 127.0.0.1, one slot, one thread. Its log lines are kept for assertions. It is stopped on dispose, and also when
/// the test process dies: it runs under a small shell that kills it as soon as its stdin (a pipe from this
/// process) closes, which the kernel does for a process that is gone, however it went.
/// </summary>
public sealed class RealLlamaServer : IAsyncDisposable
{
    public const string ModelFile = "tiny-random-llama.gguf";

    /// <summary>Logged by llama-server for each request whose body it could not use (e.g. a JSON parse error).</summary>
    public const string RefusedBodyLine = "got exception";

    /// <summary>Logged by llama-server when a request starts work on a slot.</summary>
    public const string TaskStartedLine = "launch_slot_";

    private static readonly string Root = Path.Combine(TestAssets.Shared, "llama");

    private readonly ConcurrentQueue<string> log = new();
    private readonly Process process;

    private RealLlamaServer(Process process, int port)
    {
        this.process = process;
        Port = port;
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public static string Executable => Path.Combine(Root, "bin", "llama-server");

    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

    /// <summary>For asking llama-server directly (e.g. its /health).</summary>
    public HttpClient Client { get; }

    public IReadOnlyCollection<string> Log => log;

    public bool HasExited => process.HasExited;

    public static Task<RealLlamaServer> StartAsync(CancellationToken cancellationToken, params string[] extraArguments) =>
        StartAsync(["-m", Path.Combine(Root, "models", ModelFile), "--parallel", "1"], extraArguments, cancellationToken);

    /// <summary>llama-server in router mode: the models of ../shared/llama/models behind one URL, loaded by it on demand.</summary>
    public static Task<RealLlamaServer> StartRouterAsync(CancellationToken cancellationToken) =>
        StartAsync(["--models-dir", Path.Combine(Root, "models"), "--models-max", "1"], [], cancellationToken);

    private static async Task<RealLlamaServer> StartAsync(string[] modelArguments, string[] extraArguments, CancellationToken cancellationToken)
    {
        if (!File.Exists(Executable))
        {
            throw new FileNotFoundException($"The real llama-server is needed for this test and is missing: {Executable}");
        }

        var port = FreePort();
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };

        // $0 is the server, the rest its arguments; `cat` returns when this process's end of the pipe closes.
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("\"$0\" \"$@\" <&- & server=$!; cat >/dev/null; kill $server 2>/dev/null; wait $server");
        start.ArgumentList.Add(Executable);
        foreach (var argument in (string[])[.. modelArguments, "--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-c", "4096", "-t", "1", .. extraArguments])
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var server = new RealLlamaServer(process, port);
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitUntilHealthyAsync(TimeSpan.FromSeconds(60), cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>True when llama-server answers its /health with 200.</summary>
    public async Task<bool> IsHealthyAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var response = await Client.GetAsync("/health", cancellationToken);
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    public int CountLogLines(string fragment) => log.Count(line => line.Contains(fragment, StringComparison.Ordinal));

    public string LogTail(int lines = 20) => string.Join('\n', log.TakeLast(lines));

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!process.HasExited)
        {
            process.StandardInput.Close(); // the shell kills the server
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }

        process.Dispose();
    }

    private async Task WaitUntilHealthyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (!await IsHealthyAsync(cancellationToken))
        {
            if (process.HasExited || Stopwatch.GetTimestamp() > deadline)
            {
                throw new InvalidOperationException($"llama-server did not become healthy on port {Port}:\n{LogTail()}");
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    private void Keep(string? line)
    {
        if (line is not null)
        {
            log.Enqueue(line);
        }
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// LockN in front of a <see cref="RealLlamaServer"/>: backend <c>tiny</c> serving model <see cref="Model"/>, set the way
/// an operator would (<c>Dispatch__Backends__0__*</c>), with its slot count read from llama-server's /props.
/// </summary>
public class RealLlamaDispatchFixture : LockNServerFixture
{
    protected override bool WaitsForWhisper => false; // no test here needs a transcript before its first request

    public const string Model = "tiny-random-llama";

    public RealLlamaServer Llama { get; private set; } = null!;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Dispatch:Backends:0:Name"] = "tiny",
        ["Dispatch:Backends:0:Url"] = Llama.BaseAddress.ToString(),
        ["Dispatch:Backends:0:Models:0"] = Model,
        ["Dispatch:Backends:0:DeadlineSeconds"] = "60",
        ["Dispatch:HealthCheckIntervalSeconds"] = "0.5",
    };

    public override async ValueTask InitializeAsync()
    {
        Llama = await RealLlamaServer.StartAsync(CancellationToken.None);
        await base.InitializeAsync();
        var deadline = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
        while (await BackendStateAsync() != "ready")
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException("LockN did not see the real llama-server as healthy.");
            }

            await Task.Delay(50);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Llama.DisposeAsync();
        GC.SuppressFinalize(this);
    }

    private async Task<string?> BackendStateAsync()
    {
        using var response = await Client.GetAsync("/admin/backends");
        response.EnsureSuccessStatusCode();
        var list = await response.Content.ReadFromJsonAsync<JsonElement>();
        return list.GetProperty("data")[0].GetProperty("state").GetString();
    }
}
