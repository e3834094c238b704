using System.Globalization;

namespace LockN.Bench;

/// <summary>Memory of a process and its children, read from /proc (Linux), for the reports.</summary>
internal static class ProcessMemory
{
    /// <summary>The processes whose parent is <paramref name="parent"/>.</summary>
    public static IEnumerable<int> ChildrenOf(int parent)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(dir, "stat"));
            }
            catch (IOException)
            {
                continue; // exited while we looked
            }

            if (int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture) == parent)
            {
                yield return pid;
            }
        }
    }

    /// <summary>Every process below <paramref name="root"/> (children, theirs, ...), from one pass over /proc.</summary>
    public static List<int> DescendantsOf(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && ParentOf(pid) is { } parent)
            {
                parents[pid] = parent;
            }
        }

        var found = new List<int>();
        var below = new HashSet<int> { root };
        for (var added = true; added;)
        {
            added = false;
            foreach (var (pid, parent) in parents)
            {
                if (below.Contains(parent) && below.Add(pid))
                {
                    found.Add(pid);
                    added = true;
                }
            }
        }

        return found;
    }

    /// <summary>The process's command name (/proc/PID/comm, at most 15 characters); null once it is gone.</summary>
    /// <summary>
    /// Whether <paramref name="pid"/> still runs: an exited process its new parent has not reaped yet (a zombie: an
    /// orphan waits for init, which on some VMs reaps late) has ended, though it still has a /proc entry.
    /// </summary>
    public static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
            return state is not ('Z' or 'X' or default(char));
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static string? NameOf(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n');
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Resident memory now (VmRSS); 0 once the process is gone.</summary>
    public static long ResidentBytes(int pid) => Read(pid, "status").GetValueOrDefault("VmRSS:");

    private static int? ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null; // exited while we looked
        }
    }

    /// <summary>The "Key: N kB" lines of /proc/PID/<paramref name="file"/> (status, smaps_rollup) in bytes; empty once the process is gone.</summary>
    public static Dictionary<string, long> Read(int pid, string file)
    {
        var values = new Dictionary<string, long>();
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/{file}"))
            {
                var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length == 3 && parts[2] == "kB")
                {
                    values[parts[0]] = long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return values;
    }
}
