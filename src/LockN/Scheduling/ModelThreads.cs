using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace LockN.Scheduling;

/// <summary>The CPU priority a model's computation runs at, relative to the front door (HTTP, admission, health).</summary>
internal enum ModelPriority
{
    /// <summary>Below the front door, like every other model: the default.</summary>
    BelowNormal,

    /// <summary>As the front door: for a host that runs only this model.</summary>
    Normal,
}

/// <summary>
/// Dedicated threads that run an in-process model's computation (YAMNet on ONNX Runtime) at the priority the Whisper
/// worker processes run at, so that busy models share the cores by their thread counts and the front door stays
/// ahead of both. A thread's nice value is inherited by the threads it creates, so a model created on one of these
/// threads has its native thread pool at the same priority. Hand-written because .NET's thread priorities are ignored
/// on Linux and its thread pool cannot run some work at a lower priority than the rest.
/// </summary>
internal sealed partial class ModelThreads : IDisposable
{
    /// <summary>The nice value of BelowNormal, the same .NET gives a process with <c>ProcessPriorityClass.BelowNormal</c>.</summary>
    private const int BelowNormalNice = 10;

    private readonly BlockingCollection<Action> work = new();
    private readonly Thread[] threads;

    public ModelThreads(string name, int count, ModelPriority priority)
    {
        threads = new Thread[count];
        for (var i = 0; i < count; i++)
        {
            threads[i] = new Thread(() => Serve(priority)) { IsBackground = true, Name = $"{name} {i + 1}" };
            threads[i].Start();
        }
    }

    /// <summary>Runs <paramref name="compute"/> on one of the threads; waits for a free one if all are busy.</summary>
    public Task<T> RunAsync<T>(Func<T> compute, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var result = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        work.Add(() =>
        {
            if (cancellationToken.IsCancellationRequested)
            {
                result.TrySetCanceled(cancellationToken);
                return;
            }

            try
            {
                result.TrySetResult(compute());
            }
            catch (OperationCanceledException ex)
            {
                result.TrySetCanceled(ex.CancellationToken);
            }
            catch (Exception ex)
            {
                result.TrySetException(ex);
            }
        }, CancellationToken.None);
        return result.Task;
    }

    public void Dispose() => work.CompleteAdding();

    private void Serve(ModelPriority priority)
    {
        if (priority == ModelPriority.BelowNormal)
        {
            LowerCurrentThread();
        }

        foreach (var item in work.GetConsumingEnumerable())
        {
            item();
        }
    }

    private static void LowerCurrentThread()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            // On Linux the nice value belongs to a thread, and who = 0 names the calling thread only.
            _ = SetPriority(0, 0, BelowNormalNice);
        }
        catch (EntryPointNotFoundException)
        {
            // No setpriority in this C library: the model runs at the front door's priority.
        }
    }

    [LibraryImport("libc", EntryPoint = "setpriority")]
    private static partial int SetPriority(int which, uint who, int value);
}
