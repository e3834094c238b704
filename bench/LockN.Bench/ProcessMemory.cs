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
