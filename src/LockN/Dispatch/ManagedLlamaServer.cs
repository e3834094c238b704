using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using LockN.Models;

namespace LockN.Dispatch;

internal enum ManagedServerState
{
    Stopped,

    /// <summary>The process runs (or is about to be started again) and has not yet answered /health with 200.</summary>
    Starting,
    Running,
    Failed,
}

/// <summary>
/// One llama-server process LockN owns: started on a free 127.0.0.1 port (tied to LockN by <see cref="ProcessLauncher"/>),
/// loading until its <c>/health</c> answers 200, then serving with the slot count of its <c>/props</c>. It is started
/// again when it exits, after 1, 2, 4 … 30 s (<c>Dispatch:RestartBackoffSeconds</c> doubled); after <see cref="CrashLimit"/> exits within <see cref="CrashWindow"/> it is
/// <see cref="ManagedServerState.Failed"/> until an admin starts it. Stopping is SIGTERM to its process group, then
/// SIGKILL after the grace period. Its last <see cref="LogCapacity"/> output lines are kept for /admin/backends/{name}/logs.
/// </summary>
internal sealed partial class ManagedLlamaServer : IAsyncDisposable
{
    public const int LogCapacity = 500;
    public const int CrashLimit = 5;
    public static readonly TimeSpan CrashWindow = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    private const int MaxLineLength = 2000;

    private readonly SemaphoreSlim lifecycle = new(1, 1);
    private readonly Lock gate = new();
    private readonly Queue<string> log = new();
    private readonly Queue<long> recentCrashes = new();
    private readonly DispatchOptions dispatch;
    private readonly ModelDirectories directories;
    private readonly ProcessLauncher launcher;
    private readonly UpstreamClient upstream;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private Process? process;
    private CancellationTokenSource? run;
    private TaskCompletionSource<string?> ready = NewReady();
    private long startedAt;
    private int consecutiveCrashes;
    private int loadingAnswers;
    private bool stopRequested;

    public ManagedLlamaServer(ManagedServerOptions options, DispatchOptions dispatch, ModelDirectories directories, ProcessLauncher launcher, UpstreamClient upstream, TimeProvider time, ILogger logger)
    {
        Options = options;
        this.dispatch = dispatch;
        this.directories = directories;
        this.launcher = launcher;
        this.upstream = upstream;
        this.time = time;
        this.logger = logger;
    }

    public ManagedServerOptions Options { get; }

    /// <summary>Set once by the registry: the backend this process serves.</summary>
    public Backend Backend { get; set; } = null!;

    public ManagedServerState State { get; private set; }

    public int? Pid { get; private set; }

    public int? Port { get; private set; }

    public Uri? BaseUrl => State is ManagedServerState.Starting or ManagedServerState.Running && Port is { } port ? new Uri($"http://127.0.0.1:{port}/") : null;

    /// <summary>Starts, counting the automatic ones after an exit (not admin starts).</summary>
    public int Restarts { get; private set; }

    /// <summary>Why it last exited or failed, in one line.</summary>
    public string? LastExit { get; private set; }

    public TimeSpan? Uptime => State == ManagedServerState.Running ? time.GetElapsedTime(startedAt) : null;

    /// <summary>The timing of the last start: process start, model load (to /health 200), both from the start call.</summary>
    public StartTimings? LastStart { get; private set; }

    public IReadOnlyList<string> LogLines()
    {
        lock (gate)
        {
            return [.. log];
        }
    }

    /// <summary>
    /// Null once the server is ready; otherwise why it will not be (it failed, or was stopped). Waits while it loads,
    /// and through restarts after a crash, as long as <paramref name="cancellationToken"/> allows.
    /// </summary>
    public Task<string?> WaitReadyAsync(CancellationToken cancellationToken)
    {
        lock (gate)
        {
            // Read together with State: Complete replaces the wait under the same lock, after State has changed.
            return State == ManagedServerState.Running ? Task.FromResult<string?>(null) : ready.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// True when the process a request just failed to reach is gone (or going within half a second): the failure was
    /// its death, not the network's, and a restart is on its way.
    /// </summary>
    public async Task<bool> ExitedAsync(CancellationToken cancellationToken)
    {
        var child = process;
        if (child is null)
        {
            return true;
        }

        try
        {
            await child.WaitForExitAsync(cancellationToken).WaitAsync(TimeSpan.FromMilliseconds(500), time, cancellationToken);

            // Gone: wait (briefly) for the exit to be handled, so that whoever asked next waits for the restart.
            var since = time.GetTimestamp();
            while (process == child && time.GetElapsedTime(since) < TimeSpan.FromSeconds(1))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(5), time, cancellationToken);
            }

            return true;
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            return false;
        }
        catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException)
        {
            return true; // reaped and disposed by the exit watcher already
        }
    }

    /// <summary>True when the process has died and its exit is about to be handled (a restart follows).</summary>
    public bool ProcessGone
    {
        get
        {
            try
            {
                return process is { HasExited: true };
            }
            catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException)
            {
                return true;
            }
        }
    }

    /// <summary>Starts the process unless it runs or is starting. <paramref name="byAdmin"/> also clears a failure.</summary>
    public async Task StartAsync(bool byAdmin, CancellationToken cancellationToken)
    {
        await lifecycle.WaitAsync(cancellationToken);
        try
        {
            if (State is ManagedServerState.Running or ManagedServerState.Starting || (State == ManagedServerState.Failed && !byAdmin))
            {
                return;
            }

            if (byAdmin)
            {
                recentCrashes.Clear();
                consecutiveCrashes = 0;
            }

            await LaunchAsync();
        }
        finally
        {
            lifecycle.Release();
        }
    }

    /// <summary>Stops the process (SIGTERM, then SIGKILL after the grace period); it stays stopped until started.</summary>
    public async Task StopAsync(string reason, CancellationToken cancellationToken)
    {
        await lifecycle.WaitAsync(cancellationToken);
        try
        {
            await StopCoreAsync(reason);
            State = ManagedServerState.Stopped;
            LastExit = reason;
            Complete($"backend '{Options.Name}' was stopped ({reason}).");
        }
        finally
        {
            lifecycle.Release();
        }
    }

    /// <summary>Kills and starts it again at once (a stuck server: SIGKILL, no grace, since it is not answering anyway).</summary>
    public async Task RestartAsync(string reason, bool graceful, CancellationToken cancellationToken)
    {
        await lifecycle.WaitAsync(cancellationToken);
        try
        {
            LogRestarting(logger, Options.Name, reason);
            LastExit = reason;
            await StopCoreAsync(reason, graceful);
            Restarts++;
            await LaunchAsync();
        }
        finally
        {
            lifecycle.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync("LockN is shutting down", CancellationToken.None);
        lifecycle.Dispose();
    }

    // Called under the lifecycle lock.
    private async Task LaunchAsync()
    {
        var began = time.GetTimestamp();
        var (executable, arguments, problem) = Prepare();
        if (problem is not null)
        {
            Fail(problem);
            return;
        }

        var port = FreePort();
        var child = new Process { StartInfo = launcher.Prepare(executable!, [.. arguments!, "--port", port.ToString(CultureInfo.InvariantCulture)]), EnableRaisingEvents = true };
        child.OutputDataReceived += (_, e) => Keep(e.Data);
        child.ErrorDataReceived += (_, e) => Keep(e.Data);
        try
        {
            await launcher.StartAsync(child);
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            child.Dispose();
            Fail($"llama-server could not be started ({executable}): {ex.Message}");
            return;
        }

        child.StandardInput.Close();
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        var processStarted = time.GetElapsedTime(began);
        process = child;
        Pid = child.Id;
        Port = port;
        stopRequested = false;
        startedAt = time.GetTimestamp();
        loadingAnswers = 0;
        State = ManagedServerState.Starting;
        Backend.ResetHealth("loading its model");
        var thisRun = new CancellationTokenSource();
        run = thisRun;
        LogStarted(logger, Options.Name, child.Id, port, launcher.TiesChildrenToLockN);
        _ = WatchExitAsync(child);
        _ = WaitLoadedAsync(child, began, processStarted, thisRun.Token);
    }

    /// <summary>The executable and arguments, or why there are none (no executable, no model file).</summary>
    private (string? Executable, string[]? Arguments, string? Error) Prepare()
    {
        var executable = ProcessLauncher.Find(dispatch.LlamaServerPath);
        if (executable is null)
        {
            return (null, null, $"llama-server was not found at '{dispatch.LlamaServerPath}': install it, or set {DispatchOptions.Section}:{nameof(DispatchOptions.LlamaServerPath)} to its path.");
        }

        var model = directories.Find(Options.Model);
        if (model is null)
        {
            return (null, null, $"Model file '{Options.Model}' was not found under the model directories ({directories}); put it there or give its full path");
        }

        var arguments = new List<string> { "-m", model, "--host", "127.0.0.1", "--parallel", Options.Parallel.ToString(CultureInfo.InvariantCulture) };
        if (Options.Mmproj is { Length: > 0 } mmprojName)
        {
            if (directories.Find(mmprojName) is not { } mmproj)
            {
                return (null, null, $"Projector file '{mmprojName}' was not found under the model directories ({directories})");
            }

            arguments.AddRange(["--mmproj", mmproj]);
        }

        if (Options.ContextSize > 0)
        {
            arguments.AddRange(["-c", Options.ContextSize.ToString(CultureInfo.InvariantCulture)]);
        }

        if (Options.GpuLayers is { } layers)
        {
            arguments.AddRange(["-ngl", layers.ToString(CultureInfo.InvariantCulture)]);
        }

        if (Options.Threads is { } threads)
        {
            arguments.AddRange(["-t", threads.ToString(CultureInfo.InvariantCulture)]);
        }

        if (!Options.ExtraArguments.Any(a => a is "--alias" or "-a"))
        {
            // Its answers and /v1/models then name the model as clients ask for it, not by its file's path.
            arguments.AddRange(["--alias", Backend.ModelId]);
        }

        arguments.AddRange(Options.ExtraArguments);
        return (executable, [.. arguments], null);
    }

    private async Task WaitLoadedAsync(Process child, long began, TimeSpan processStarted, CancellationToken cancellationToken)
    {
        var limit = TimeSpan.FromSeconds(Options.LoadTimeoutSeconds);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                if (time.GetElapsedTime(began) > limit)
                {
                    LogLoadTimeout(logger, Options.Name, limit.TotalSeconds);
                    Keep($"[lockn] not loaded within {limit.TotalSeconds:0.#} s (LoadTimeoutSeconds): killed");
                    launcher.Signal(child.Id, ProcessLauncher.SigKill); // counted as a crash by WatchExitAsync
                    return;
                }

                if (await SlotsWhenHealthyAsync(cancellationToken) is { } slots)
                {
                    var loaded = time.GetElapsedTime(began);
                    await lifecycle.WaitAsync(cancellationToken);
                    try
                    {
                        if (cancellationToken.IsCancellationRequested)
                        {
                            return;
                        }

                        Backend.SetSlots(slots, "props");
                        Backend.MarkHealthy(TimeSpan.Zero);
                        lock (gate)
                        {
                            State = ManagedServerState.Running;
                        }

                        consecutiveCrashes = 0;
                        LastStart = new StartTimings(Math.Round(processStarted.TotalMilliseconds, 2), Math.Round(loaded.TotalMilliseconds, 2), loadingAnswers);
                        Complete(null);
                        LogReady(logger, Options.Name, loaded.TotalMilliseconds, slots);
                    }
                    finally
                    {
                        lifecycle.Release();
                    }

                    return;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(25), time, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // stopped or exited while loading
        }
    }

    // The slot count once /health is 200 and /props says it; null while loading.
    private async Task<int?> SlotsWhenHealthyAsync(CancellationToken cancellationToken)
    {
        if (BaseUrl is not { } url)
        {
            return null;
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(dispatch.HealthCheckTimeoutSeconds));
            using var health = await upstream.Http.GetAsync(new Uri(url, "health"), timeout.Token);
            if (health.StatusCode != HttpStatusCode.OK)
            {
                if (health.StatusCode == HttpStatusCode.ServiceUnavailable)
                {
                    loadingAnswers++; // llama-server's "Loading model"
                }

                return null;
            }

            using var props = await upstream.Http.GetAsync(new Uri(url, "props"), timeout.Token);
            using var json = JsonDocument.Parse(await props.Content.ReadAsStreamAsync(timeout.Token));
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("total_slots", out var total) && total.TryGetInt32(out var count) && count > 0
                ? Math.Min(count, 1024)
                : Options.Parallel;
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or IOException)
        {
            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null; // this check timed out; the next one may not
        }
    }

    private async Task WatchExitAsync(Process child)
    {
        await child.WaitForExitAsync(CancellationToken.None);
        var code = child.ExitCode;
        child.Dispose();
        await lifecycle.WaitAsync(CancellationToken.None);
        try
        {
            if (process != child || stopRequested)
            {
                return; // a stop or restart in progress owns what happens next
            }

            await (run?.CancelAsync() ?? Task.CompletedTask);
            process = null;
            Pid = null;
            var wasReady = State == ManagedServerState.Running;
            var reason = $"exited with code {Describe(code)}{(wasReady ? "" : " while loading its model")}";
            LastExit = reason;
            Keep($"[lockn] llama-server {reason}");
            LogExited(logger, Options.Name, reason);
            Backend.ResetHealth($"its server {reason}; restarting");

            var now = time.GetTimestamp();
            recentCrashes.Enqueue(now);
            while (recentCrashes.Count > 0 && time.GetElapsedTime(recentCrashes.Peek()) > CrashWindow)
            {
                recentCrashes.Dequeue();
            }

            if (recentCrashes.Count >= CrashLimit)
            {
                Fail($"llama-server {reason}, {recentCrashes.Count} times within {CrashWindow.TotalMinutes:0} min; start it again with POST /admin/backends/{Options.Name}/start. Last output: {LastLine()}");
                return;
            }

            var backoff = TimeSpan.FromSeconds(Math.Min(MaxBackoff.TotalSeconds, dispatch.RestartBackoffSeconds * Math.Pow(2, consecutiveCrashes)));
            consecutiveCrashes++;
            State = ManagedServerState.Starting; // requests keep waiting for it, within their deadlines
            _ = RestartAfterAsync(backoff);
        }
        finally
        {
            lifecycle.Release();
        }
    }

    private async Task RestartAfterAsync(TimeSpan backoff)
    {
        await Task.Delay(backoff, time);
        await lifecycle.WaitAsync(CancellationToken.None);
        try
        {
            // Still waiting for this restart: no admin stop, start or restart came in between.
            if (State == ManagedServerState.Starting && process is null && !stopRequested)
            {
                Restarts++;
                await LaunchAsync();
            }
        }
        finally
        {
            lifecycle.Release();
        }
    }

    // Called under the lifecycle lock.
    private async Task StopCoreAsync(string reason, bool graceful = true)
    {
        stopRequested = true;
        await (run?.CancelAsync() ?? Task.CompletedTask);
        var child = process;
        process = null;
        Pid = null;
        Backend.ResetHealth(reason);
        if (child is null)
        {
            return;
        }

        try
        {
            if (!child.HasExited)
            {
                var pid = child.Id;
                if (graceful)
                {
                    launcher.Signal(pid, ProcessLauncher.SigTerm);
                    launcher.Signal(pid, ProcessLauncher.SigCont); // a stopped (SIGSTOP) process must run to act on SIGTERM
                    using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(dispatch.StopGraceSeconds), time);
                    try
                    {
                        await child.WaitForExitAsync(grace.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        LogKilled(logger, Options.Name, dispatch.StopGraceSeconds);
                    }
                }

                if (!child.HasExited)
                {
                    launcher.Signal(pid, ProcessLauncher.SigKill);
                    await child.WaitForExitAsync(CancellationToken.None);
                }
            }

            Keep($"[lockn] stopped: {reason}");
        }
        catch (InvalidOperationException)
        {
            // already reaped
        }
    }

    // Called under the lifecycle lock.
    private void Fail(string reason)
    {
        State = ManagedServerState.Failed;
        LastExit = reason;
        Keep($"[lockn] failed: {reason}");
        LogFailed(logger, Options.Name, reason);
        Backend.ResetHealth(reason);
        Complete(FailedForClients(Options.Name)); // the reason may name paths: it is for admins, in /admin/backends
    }

    /// <summary>What a client is told of a failed server: that it failed, and where an admin reads why.</summary>
    public static string FailedForClients(string name) =>
        $"backend '{name}' failed (an admin reads why in GET /admin/backends/{name} and starts it again with POST /admin/backends/{name}/start).";

    // Ends the current wait for readiness: null when ready, else why not. The next start gets a fresh one.
    private void Complete(string? outcome)
    {
        TaskCompletionSource<string?> finished;
        lock (gate)
        {
            finished = ready;
            ready = NewReady();
        }

        finished.TrySetResult(outcome);
    }

    private static TaskCompletionSource<string?> NewReady() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (gate)
        {
            log.Enqueue(line.Length > MaxLineLength ? line[..MaxLineLength] + "…" : line);
            while (log.Count > LogCapacity)
            {
                log.Dequeue();
            }
        }
    }

    private string LastLine()
    {
        lock (gate)
        {
            return log.Reverse().FirstOrDefault(l => !l.StartsWith("[lockn]", StringComparison.Ordinal)) ?? "(none)";
        }
    }

    private static string Describe(int exitCode) =>
        exitCode > 128 && exitCode < 160 ? $"{exitCode} (signal {exitCode - 128})" : exitCode.ToString(CultureInfo.InvariantCulture);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Managed server {Name} started: pid {Pid}, port {Port} (dies with LockN: {Tied})")]
    private static partial void LogStarted(ILogger logger, string name, int pid, int port, bool tied);

    [LoggerMessage(Level = LogLevel.Information, Message = "Managed server {Name} is ready after {LoadMs:0} ms with {Slots} slots")]
    private static partial void LogReady(ILogger logger, string name, double loadMs, int slots);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Managed server {Name} {Reason}")]
    private static partial void LogExited(ILogger logger, string name, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Managed server {Name} restarting: {Reason}")]
    private static partial void LogRestarting(ILogger logger, string name, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Managed server {Name} failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string name, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Managed server {Name} did not load within {Seconds} s")]
    private static partial void LogLoadTimeout(ILogger logger, string name, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Managed server {Name} did not stop within {Seconds} s of SIGTERM: killed")]
    private static partial void LogKilled(ILogger logger, string name, double seconds);
}

/// <summary>
/// How long the last start took: to the process running, and to its model loaded (/health 200), both from the start;
/// and how many times /health answered 503 (loading) on the way.
/// </summary>
internal sealed record StartTimings(double ProcessStartMs, double LoadedMs, int LoadingAnswers);
