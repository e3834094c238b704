using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace LockN.Dispatch;

/// <summary>
/// Starts child processes so that they die with LockN, however LockN dies. On Linux each child runs under
/// <c>setsid</c> (its own process group, so a stop signal reaches anything it forks) and <c>setpriv --pdeathsig KILL</c>
/// (the kernel kills it when its parent goes, even on SIGKILL, which no handler in LockN could catch). The parent-death
/// signal follows the <em>thread</em> that forked, not the process, so every start happens on one thread that lives as
/// long as LockN: a thread-pool thread retiring would otherwise kill the model servers it happened to start.
/// Written by hand because no library offers a parent-death signal.
/// </summary>
internal sealed partial class ProcessLauncher : IDisposable
{
    private readonly BlockingCollection<(Process Process, TaskCompletionSource Started)> starts = new();
    private readonly Thread thread;

    public ProcessLauncher()
    {
        Setsid = Find("setsid");
        Setpriv = Find("setpriv");
        thread = new Thread(Run) { IsBackground = true, Name = "LockN process launcher" };
        thread.Start();
    }

    private string? Setsid { get; }
    private string? Setpriv { get; }

    /// <summary>True when children get their own process group and die with LockN (Linux with util-linux).</summary>
    public bool TiesChildrenToLockN => Setsid is not null && Setpriv is not null;

    /// <summary>The start information for <paramref name="executable"/>: wrapped when the platform allows it.</summary>
    public ProcessStartInfo Prepare(string executable, IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo
        {
            RedirectStandardInput = true, // never the terminal's: a child must not read LockN's stdin
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (TiesChildrenToLockN)
        {
            // setsid does not fork when its caller leads no group (a fresh child never does), so the pid LockN
            // holds stays the server's own through both execs.
            info.FileName = Setsid!;
            foreach (var argument in (string[])[Setpriv!, "--pdeathsig", "KILL", "--", executable])
            {
                info.ArgumentList.Add(argument);
            }
        }
        else
        {
            info.FileName = executable;
        }

        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        return info;
    }

    /// <summary>Starts <paramref name="process"/> (its handlers already attached) on the launcher thread.</summary>
    public Task StartAsync(Process process)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        starts.Add((process, started));
        return started.Task;
    }

    /// <summary>Sends <paramref name="signal"/> to the process group led by <paramref name="pid"/> (or the process alone without setsid).</summary>
    public bool Signal(int pid, int signal) =>
        OperatingSystem.IsWindows() ? false : Native.Kill(TiesChildrenToLockN ? -pid : pid, signal) == 0;

    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;

    /// <summary>An executable on the PATH (or a path as it is), or null.</summary>
    public static string? Find(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(name) ? Path.GetFullPath(name) : null;
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
    }

    public void Dispose() => starts.CompleteAdding();

    private void Run()
    {
        foreach (var (process, started) in starts.GetConsumingEnumerable())
        {
            try
            {
                process.Start();
                started.TrySetResult();
            }
            catch (Exception ex)
            {
                started.TrySetException(ex);
            }
        }
    }

    private static partial class Native
    {
        [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
        public static partial int Kill(int pid, int signal);
    }
}
