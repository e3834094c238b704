using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using LockN.Audio;
using LockN.Scheduling;

namespace LockN.Transcription.Workers;

internal sealed class WorkerFailedException(string message) : Exception(message);

/// <summary>How a model's worker processes run.</summary>
/// <param name="Lanes">Jobs one worker runs side by side on its one loaded model: the model's slots.</param>
internal sealed record WorkerSettings(int Threads, int Lanes, bool WarmUp, WhisperEngineSettings Engine, ModelPriority Priority)
{
    public static WorkerSettings From(TranscriptionOptions options) =>
        new(options.EffectiveThreads, options.Slots, options.WarmUp, options.Engine, options.WorkerPriority);
}

/// <summary>
/// The server's handle on one worker process holding one loaded Whisper model, running a job per lane (one lane per
/// slot). A job that must stop now is asked to cancel (whisper.cpp's abort callback, checked only between encoder
/// and decoder passes) and, if it has not stopped within a short grace period, the process is killed. Either way nothing keeps
/// computing for a client that is gone.
/// </summary>
internal sealed partial class WhisperWorker : IAsyncDisposable
{
    private readonly Process process;
    private readonly Channel<WorkerEvent> startup = Channel.CreateUnbounded<WorkerEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<WorkerEvent>[] lanes;
    private readonly bool[] laneTaken;
    private readonly SemaphoreSlim stdinFrames = new(1, 1);
    private volatile bool ready;
    private int retired;
    private readonly Queue<string> stderrTail = new();
    private readonly ILogger logger;
    private readonly Task stdoutPump;
    private readonly Task stderrPump;
    private int killed;

    private WhisperWorker(Process process, int laneCount, ILogger logger)
    {
        this.process = process;
        this.logger = logger;
        lanes = [.. Enumerable.Range(0, laneCount).Select(_ => Channel.CreateUnbounded<WorkerEvent>(new UnboundedChannelOptions { SingleReader = true }))];
        laneTaken = new bool[laneCount];
        stdoutPump = Task.Run(PumpStdoutAsync);
        stderrPump = Task.Run(PumpStderrAsync);
    }

    public int ProcessId => process.Id;

    /// <summary>False once the process was killed, crashed or left a job in an unknown state.</summary>
    public bool IsUsable => Volatile.Read(ref killed) == 0 && !process.HasExited;

    public int LaneCount => lanes.Length;

    /// <summary>True once LockN killed the process (to stop a job that would not), as opposed to a crash.</summary>
    public bool WasKilled => Volatile.Read(ref killed) == 1;

    /// <summary>Takes a free lane, or returns false when every lane runs a job.</summary>
    public bool TryTakeLane(out int lane)
    {
        lock (laneTaken)
        {
            lane = Array.IndexOf(laneTaken, false);
            if (lane < 0)
            {
                return false;
            }

            laneTaken[lane] = true;
            return true;
        }
    }

    public void ReleaseLane(int lane)
    {
        lock (laneTaken)
        {
            laneTaken[lane] = false;
        }
    }

    /// <summary>True for the first caller only: the one that disposes the worker and starts its replacement.</summary>
    public bool TryRetire() => Interlocked.Exchange(ref retired, 1) == 0;

    /// <summary>The whisper.cpp runtime the worker loaded, as it reported when ready.</summary>
    public WhisperRuntimeInfo? Runtime { get; private set; }

    public static async Task<WhisperWorker> StartAsync(WorkerLauncher launcher, WhisperModelFile model, WorkerSettings settings, ILogger logger, CancellationToken cancellationToken)
    {
        var startInfo = launcher.CreateStartInfo(model.Path, settings);
        var process = Process.Start(startInfo) ?? throw new WorkerFailedException("The worker process did not start.");
        if (settings.Priority == ModelPriority.BelowNormal)
        {
            TryLowerPriority(process);
        }

        var worker = new WhisperWorker(process, settings.Lanes, logger);
        try
        {
            var first = await worker.startup.Reader.ReadAsync(cancellationToken);
            if (first.Type != WorkerEventType.Ready)
            {
                throw new WorkerFailedException(first.Type == WorkerEventType.Error && first.Message is { } problem
                    ? problem
                    : $"Worker for {model.Id} sent {first.Type} before ready: {first.Message}");
            }

            worker.Runtime = first.Runtime;
            LogStarted(logger, model.Id, process.Id, first.Runtime?.Source ?? "unknown", first.Runtime?.Library ?? "unknown", first.Runtime?.SystemInfo ?? "");
            return worker;
        }
        catch (ChannelClosedException)
        {
            await worker.DisposeAsync();
            throw new WorkerFailedException($"Worker for {model.Id} exited while loading {model.Path}: {worker.StderrTail()}");
        }
        catch
        {
            await worker.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Workers run below the server's priority: when models saturate every core, the front door must still admit,
    /// refuse, cancel and report health on time.
    /// </summary>
    private static void TryLowerPriority(Process process)
    {
        try
        {
            process.PriorityClass = ProcessPriorityClass.BelowNormal;
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or PlatformNotSupportedException)
        {
            // Not permitted here: the worker runs at normal priority.
        }
    }

    /// <summary>
    /// Runs one job on a lane taken with <see cref="TryTakeLane"/>. When <paramref name="cancellationToken"/> fires, the
    /// job is cancelled (or the process killed after <paramref name="cancelGrace"/>) before the
    /// <see cref="OperationCanceledException"/> surfaces.
    /// </summary>
    public async IAsyncEnumerable<TranscriptSegment> RunAsync(
        int lane, DecodedSamples samples, WhisperJob job, TimeSpan cancelGrace, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var events = lanes[lane];
        var finished = false;
        var sent = false;
        try
        {
            await stdinFrames.WaitAsync(cancellationToken);
            try
            {
                await WorkerProtocol.WriteJobAsync(process.StandardInput.BaseStream, lane, job, samples, cancellationToken);
                sent = true;
            }
            finally
            {
                stdinFrames.Release();
            }

            while (true)
            {
                WorkerEvent next;
                try
                {
                    next = await events.Reader.ReadAsync(cancellationToken);
                }
                catch (ChannelClosedException)
                {
                    throw new WorkerFailedException($"The transcription worker exited unexpectedly: {StderrTail()}");
                }

                switch (next.Type)
                {
                    case WorkerEventType.Segment when next.Segment is not null:
                        yield return next.Segment;
                        break;
                    case WorkerEventType.Done:
                        finished = true;
                        yield break;
                    case WorkerEventType.Error:
                        finished = true;
                        throw new WorkerFailedException(next.Message ?? "The transcription worker failed.");
                    default:
                        break;
                }
            }
        }
        finally
        {
            if (!sent)
            {
                Kill(); // a half-written job frame leaves the pipe in an unknown state (a wait for the pipe is harmless, but rare)
            }
            else if (!finished)
            {
                await StopJobAsync(lane, cancelGrace);
            }
        }
    }

    /// <summary>Asks the lane's job to stop; kills the process if it does not within the grace period.</summary>
    private async Task StopJobAsync(int lane, TimeSpan grace)
    {
        if (!IsUsable)
        {
            return;
        }

        var started = Stopwatch.GetTimestamp();
        try
        {
            using var timeout = new CancellationTokenSource(grace);
            await stdinFrames.WaitAsync(timeout.Token);
            try
            {
                await WorkerProtocol.WriteCancelAsync(process.StandardInput.BaseStream, lane);
            }
            finally
            {
                stdinFrames.Release();
            }

            while (true)
            {
                var next = await lanes[lane].Reader.ReadAsync(timeout.Token);
                if (next.Type is WorkerEventType.Cancelled or WorkerEventType.Done or WorkerEventType.Error)
                {
                    var stoppedAfter = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    LogCancelled(logger, process.Id, stoppedAfter);
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ChannelClosedException or IOException)
        {
            Kill();
            LogKilled(logger, process.Id, grace.TotalMilliseconds);
        }
    }

    public void Kill()
    {
        if (Interlocked.Exchange(ref killed, 1) == 0)
        {
            try
            {
                // A worker starts no processes of its own; killing the tree would scan all of /proc first.
                process.Kill();
            }
            catch (InvalidOperationException)
            {
                // already exited
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            process.StandardInput.Close(); // a healthy worker exits on end of stdin
        }
        catch (IOException)
        {
        }

        using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await process.WaitForExitAsync(exit.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            await process.WaitForExitAsync(CancellationToken.None);
        }

        await Task.WhenAll(stdoutPump, stderrPump);
        process.Dispose();
    }

    private async Task PumpStdoutAsync()
    {
        try
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.Length == 0)
                {
                    continue;
                }

                if (line[0] != '{')
                {
                    // Something other than our protocol wrote to stdout (a native library, the runtime): keep it, skip it.
                    LogStrayOutput(logger, line);
                    continue;
                }

                var workerEvent = JsonSerializer.Deserialize<WorkerEvent>(line, WorkerProtocol.Json);
                if (workerEvent is null)
                {
                    continue;
                }

                if (!ready)
                {
                    ready = workerEvent.Type == WorkerEventType.Ready;
                    startup.Writer.TryWrite(workerEvent);
                }
                else if ((uint)workerEvent.Lane < (uint)lanes.Length)
                {
                    lanes[workerEvent.Lane].Writer.TryWrite(workerEvent);
                }
                else
                {
                    LogStrayOutput(logger, line);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or JsonException or ObjectDisposedException)
        {
            LogProtocolError(logger, ex.Message);
        }
        finally
        {
            startup.Writer.TryComplete();
            foreach (var lane in lanes)
            {
                lane.Writer.TryComplete();
            }
        }
    }

    private async Task PumpStderrAsync()
    {
        try
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                lock (stderrTail)
                {
                    stderrTail.Enqueue(line);
                    if (stderrTail.Count > 8)
                    {
                        stderrTail.Dequeue();
                    }
                }

                LogNative(logger, line);
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
        }
    }

    private string StderrTail()
    {
        lock (stderrTail)
        {
            return stderrTail.Count == 0 ? "(no output)" : string.Join(" | ", stderrTail);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Whisper worker for {ModelId} ready (pid {ProcessId}), {Source} runtime {Library}: {SystemInfo}")]
    private static partial void LogStarted(ILogger logger, string modelId, int processId, string source, string library, string systemInfo);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Worker {ProcessId} stopped its job {Milliseconds:0} ms after cancellation")]
    private static partial void LogCancelled(ILogger logger, int processId, double milliseconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Worker {ProcessId} did not stop within {GraceMilliseconds:0} ms of cancellation; killed it")]
    private static partial void LogKilled(ILogger logger, int processId, double graceMilliseconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Worker protocol error: {Message}")]
    private static partial void LogProtocolError(ILogger logger, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Worker wrote a line outside the protocol: {Line}")]
    private static partial void LogStrayOutput(ILogger logger, string line);

    [LoggerMessage(Level = LogLevel.Trace, Message = "whisper.cpp: {Line}")]
    private static partial void LogNative(ILogger logger, string line);
}
