using System.Runtime.InteropServices;

namespace LockN.Hosting;

/// <summary>
/// Hands memory a long request used back to the system once it ends. Neither allocator does it alone: the garbage
/// collector keeps a compacted heap's free regions committed for the next burst, and glibc keeps the free lists of
/// ONNX Runtime's per-thread arenas (tens of MB each after scoring an hour of audio). Called rarely (after inputs long
/// enough to be spooled), and bursts are folded into one pass a second later, so its cost never lands on a request.
/// </summary>
internal static partial class MemoryGiveBack
{
    private static int scheduled;

    public static void AfterLongRequest()
    {
        if (Interlocked.Exchange(ref scheduled, 1) == 1)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            Volatile.Write(ref scheduled, 0);
            Now();
        });
    }

    /// <summary>Gives the memory back at once, on the calling thread (a Whisper worker between jobs).</summary>
    public static void Now()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (OperatingSystem.IsLinux())
        {
            try
            {
                _ = MallocTrim(0);
            }
            catch (EntryPointNotFoundException)
            {
                // musl and other C libraries have no malloc_trim: the collector's part is still done.
            }
        }
    }

    // glibc only; its result (whether anything was released) changes nothing.
    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
