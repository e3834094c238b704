using System.Text.Json;

namespace LockN.Transcription.Workers;

/// <summary>
/// The body of a worker process (<c>lockn worker</c>): loads one model, then runs the jobs the server sends on
/// stdin one at a time and reports segments on stdout. Runs until stdin closes, so a worker never outlives its server.
/// </summary>
internal static class WhisperWorkerHost
{
    public static async Task<int> RunAsync(string modelPath, int threads, bool warmUp, Stream input, Stream output)
    {
        using var runner = new WhisperRunner(modelPath, threads);
        if (warmUp)
        {
            await runner.WarmUpAsync(CancellationToken.None);
        }

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

        await SendAsync(new WorkerEvent(WorkerEventType.Ready));
        CancellationTokenSource? jobCancellation = null;
        Task current = Task.CompletedTask;
        try
        {
            while (await WorkerProtocol.ReadKindAsync(input, CancellationToken.None) is { } kind)
            {
                switch (kind)
                {
                    case WorkerProtocol.StartJob:
                        var (job, samples) = await WorkerProtocol.ReadJobAsync(input, CancellationToken.None);
                        await current; // the server sends one job at a time; never overlap two.
                        jobCancellation?.Dispose();
                        jobCancellation = new CancellationTokenSource();
                        var token = jobCancellation.Token;
                        current = Task.Run(() => RunJobAsync(runner, job, samples, SendAsync, token), CancellationToken.None);
                        break;
                    case WorkerProtocol.CancelJob:
                        await (jobCancellation?.CancelAsync() ?? Task.CompletedTask);
                        break;
                    default:
                        await SendAsync(new WorkerEvent(WorkerEventType.Error, Message: $"Unknown frame kind {kind}."));
                        return 2;
                }
            }
        }
        finally
        {
            // stdin closed: the server is gone or shutting down. Stop any job and leave.
            await (jobCancellation?.CancelAsync() ?? Task.CompletedTask);
            await current;
        }

        return 0;
    }

    private static async Task RunJobAsync(WhisperRunner runner, WhisperJob job, float[] samples, Func<WorkerEvent, Task> send, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var segment in runner.RunAsync(samples, job, null, cancellationToken))
            {
                await send(new WorkerEvent(WorkerEventType.Segment, segment));
            }

            await send(new WorkerEvent(WorkerEventType.Done));
        }
        catch (OperationCanceledException)
        {
            await send(new WorkerEvent(WorkerEventType.Cancelled));
        }
        catch (Exception ex)
        {
            await send(new WorkerEvent(WorkerEventType.Error, Message: ex.Message));
        }
    }
}
