using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;

namespace LockN.Transcription.Workers;

internal sealed class WorkerFailedException(string message) : Exception(message);

/// <summary>
/// The server's handle on one worker process holding one loaded Whisper model.
/// whisper.cpp only checks for cancellation between 30-second windows, so a job that must stop now is first
/// asked to cancel (the token reaches Whisper.net) and, if it has not stopped within a short grace period, the
/// process is killed. Either way nothing keeps computing for a client that is gone.
/// </summary>
internal sealed partial class WhisperWorker : IAsyncDisposable
{
    private readonly Process process;
    private readonly Channel<WorkerEvent> events = Channel.CreateUnbounded<WorkerEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Queue<string> stderrTail = new();
    private readonly ILogger logger;
    private readonly Task stdoutPump;
    private readonly Task stderrPump;
    private int killed;

    private WhisperWorker(Process process, ILogger logger)
    {
        this.process = process;
        this.logger = logger;
        stdoutPump = Task.Run(PumpStdoutAsync);
        stderrPump = Task.Run(PumpStderrAsync);
    }

    public int ProcessId => process.Id;

    /// <summary>False once the process was killed, crashed or left a job in an unknown state.</summary>
    public bool IsUsable => Volatile.Read(ref killed) == 0 && !process.HasExited;

    public static async Task<WhisperWorker> StartAsync(WorkerLauncher launcher, WhisperModelFile model, int threads, bool warmUp, ILogger logger, CancellationToken cancellationToken)
    {
        var startInfo = launcher.CreateStartInfo(model.Path, threads, warmUp);
        var process = Process.Start(startInfo) ?? throw new WorkerFailedException("The worker process did not start.");
        TryLowerPriority(process);
        var worker = new WhisperWorker(process, logger);
        try
        {
            var first = await worker.events.Reader.ReadAsync(cancellationToken);
            if (first.Type != WorkerEventType.Ready)
            {
                throw new WorkerFailedException($"Worker for {model.Id} sent {first.Type} before ready: {first.Message}");
            }

            LogStarted(logger, model.Id, process.Id);
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
    /// Runs one job. When <paramref name="cancellationToken"/> fires, the job is cancelled (or the process killed
    /// after <paramref name="cancelGrace"/>) before the <see cref="OperationCanceledException"/> surfaces.
    /// </summary>
    public async IAsyncEnumerable<TranscriptSegment> RunAsync(
        ReadOnlyMemory<float> samples, WhisperJob job, TimeSpan cancelGrace, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var finished = false;
        var sent = false;
        try
        {
            await WorkerProtocol.WriteJobAsync(process.StandardInput.BaseStream, job, samples, cancellationToken);
            sent = true;
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
                Kill(); // a half-written job frame leaves the pipe in an unknown state
            }
            else if (!finished)
            {
                await StopJobAsync(cancelGrace);
            }
        }
    }

    /// <summary>Asks the running job to stop; kills the process if it does not within the grace period.</summary>
    private async Task StopJobAsync(TimeSpan grace)
    {
        if (!IsUsable)
        {
            return;
        }

        var started = Stopwatch.GetTimestamp();
        try
        {
            WorkerProtocol.WriteCancel(process.StandardInput.BaseStream);
            using var timeout = new CancellationTokenSource(grace);
            while (true)
            {
                var next = await events.Reader.ReadAsync(timeout.Token);
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
                if (workerEvent is not null)
                {
                    events.Writer.TryWrite(workerEvent);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or JsonException or ObjectDisposedException)
        {
            LogProtocolError(logger, ex.Message);
        }
        finally
        {
            events.Writer.TryComplete();
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Whisper worker for {ModelId} ready (pid {ProcessId})")]
    private static partial void LogStarted(ILogger logger, string modelId, int processId);

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
