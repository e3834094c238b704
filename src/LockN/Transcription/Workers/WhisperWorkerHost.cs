using System.Text.Json;
using LockN.Audio;
using LockN.Hosting;

namespace LockN.Transcription.Workers;

/// <summary>
/// The body of a worker process (<c>lockn worker</c>): loads one model, then runs the jobs the server sends on
/// stdin, one at a time per lane (a lane per slot, all on the one model), and reports segments on stdout. Runs until
/// stdin closes, so a worker never outlives its server.
/// </summary>
internal static class WhisperWorkerHost
{
    public static async Task<int> RunAsync(string modelPath, int threads, int lanes, bool warmUp, WhisperEngineSettings engine, Stream input, Stream output)
    {
        var writeLock = new SemaphoreSlim(1, 1);
        async Task SendAsync(WorkerEvent workerEvent)
        {
            var line = JsonSerializer.SerializeToUtf8Bytes(workerEvent, WorkerProtocol.Json);
            await writeLock.WaitAsync();
            try
            {
                await output.WriteAsync(line);
                await output.WriteAsync("\n"u8.ToArray());
                await output.FlushAsync();
            }
            finally
            {
                writeLock.Release();
            }
        }

        WhisperRunner runner;
        try
        {
            runner = new WhisperRunner(modelPath, threads, engine, lanes);
        }
        catch (WhisperRuntimeException ex)
        {
            await SendAsync(new WorkerEvent(WorkerEventType.Error, Message: ex.Message));
            return 3;
        }

        using var _ = runner;
        if (warmUp)
        {
            await runner.WarmUpAsync(CancellationToken.None);
        }

        await SendAsync(new WorkerEvent(WorkerEventType.Ready, Runtime: runner.Runtime));
        var cancellations = new CancellationTokenSource?[runner.Lanes];
        var running = Enumerable.Repeat(Task.CompletedTask, runner.Lanes).ToArray();
        try
        {
            while (await WorkerProtocol.ReadKindAsync(input, CancellationToken.None) is { } kind)
            {
                var lane = kind is WorkerProtocol.StartJob or WorkerProtocol.CancelJob ? await WorkerProtocol.ReadLaneAsync(input, CancellationToken.None) : -1;
                if (kind is WorkerProtocol.StartJob or WorkerProtocol.CancelJob && (uint)lane >= (uint)runner.Lanes)
                {
                    await SendAsync(new WorkerEvent(WorkerEventType.Error, Message: $"Lane {lane} is out of range."));
                    return 2;
                }

                switch (kind)
                {
                    case WorkerProtocol.StartJob:
                        // Only the job holds the samples, so it can let go of them when it ends (see ReturnMemoryAfterLongJob).
                        var (job, samples) = await WorkerProtocol.ReadJobAsync(input, CancellationToken.None);
                        await running[lane]; // the server sends one job at a time per lane; never overlap two.
                        cancellations[lane]?.Dispose();
                        var cancellation = cancellations[lane] = new CancellationTokenSource();
                        var jobLane = lane;
                        running[lane] = Task.Run(() => RunJobAsync(runner, jobLane, job, samples, SendAsync, cancellation.Token), CancellationToken.None);
                        break;
                    case WorkerProtocol.CancelJob:
                        await (cancellations[lane]?.CancelAsync() ?? Task.CompletedTask);
                        break;
                    default:
                        await SendAsync(new WorkerEvent(WorkerEventType.Error, Message: $"Unknown frame kind {kind}."));
                        return 2;
                }
            }
        }
        finally
        {
            // stdin closed: the server is gone or shutting down. Stop every job and leave.
            foreach (var cancellation in cancellations)
            {
                await (cancellation?.CancelAsync() ?? Task.CompletedTask);
            }

            await Task.WhenAll(running);
        }

        return 0;
    }

    // A long job's samples are a large array (sent whole) or a 19 MB piece buffer (read from the spool). The garbage
    // collector would keep that memory committed for the next large job; a worker exists to hold a model, so hand it
    // back to the system instead.
    private const int LongJobSamples = WhisperRunner.PieceSamples;

    private static void ReturnMemoryAfterLongJob(int samples)
    {
        if (samples >= LongJobSamples)
        {
            MemoryGiveBack.Now(); // whisper.cpp's spectrogram of each piece is malloc'd: glibc keeps it unless trimmed
        }
    }

    /// <summary>
    /// <c>lockn worker --probe-runtime</c>: loads the runtime and nothing else, and reports it, so the server can refuse to
    /// start on a runtime that does not load before it listens.
    /// </summary>
    public static int ProbeRuntime(WhisperEngineSettings engine, Stream output)
    {
        WorkerEvent report;
        try
        {
            report = new WorkerEvent(WorkerEventType.Ready, Runtime: WhisperRuntime.Load(engine.NativeRuntimePath, engine.FlashAttention));
        }
        catch (WhisperRuntimeException ex)
        {
            report = new WorkerEvent(WorkerEventType.Error, Message: ex.Message);
        }

        output.Write(JsonSerializer.SerializeToUtf8Bytes(report, WorkerProtocol.Json));
        output.Write("\n"u8);
        output.Flush();
        return report.Type == WorkerEventType.Ready ? 0 : 3;
    }

    private static async Task RunJobAsync(WhisperRunner runner, int lane, WhisperJob job, DecodedSamples samples, Func<WorkerEvent, Task> send, CancellationToken cancellationToken)
    {
        var sampleCount = 0;
        try
        {
            sampleCount = samples.Length;
            await foreach (var segment in runner.RunAsync(lane, samples, job, cancellationToken))
            {
                await send(new WorkerEvent(WorkerEventType.Segment, segment, Lane: lane));
            }

            await send(new WorkerEvent(WorkerEventType.Done, Lane: lane));
        }
        catch (OperationCanceledException)
        {
            await send(new WorkerEvent(WorkerEventType.Cancelled, Lane: lane));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The spool file went with its request (cancelled before this job began); the text names no path.
            await send(new WorkerEvent(WorkerEventType.Error, Message: "the decoded audio was no longer there to read", Lane: lane));
        }
        catch (Exception ex)
        {
            await send(new WorkerEvent(WorkerEventType.Error, Message: ex.Message, Lane: lane));
        }
        finally
        {
            samples.Dispose();
            ReturnMemoryAfterLongJob(sampleCount);
        }
    }
}
