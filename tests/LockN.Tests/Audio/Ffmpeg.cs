using System.Diagnostics;
using System.Globalization;

namespace LockN.Tests.Audio;

/// <summary>The real ffmpeg/ffprobe, as references and to make test inputs in other containers.</summary>
public static class Ffmpeg
{
    /// <summary>
    /// Duration of the decoded audio as ffprobe counts it: the sum of decoded frames. The container's own figure is
    /// not used because for MP3 it includes the encoder delay and padding that decoders trim (jfk.mp3: 11.088 vs 11.0 s).
    /// </summary>
    public static async Task<double> DecodedDurationAsync(string path)
    {
        var rate = double.Parse((await RunAsync("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=sample_rate", "-of", "csv=p=0", path)).Trim(), CultureInfo.InvariantCulture);
        var frames = (await RunAsync("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "frame=nb_samples", "-of", "csv=p=0", path))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Sum(line => long.Parse(line.TrimEnd(','), CultureInfo.InvariantCulture));
        return frames / rate;
    }

    /// <summary>Runs ffmpeg to write <paramref name="output"/> (the format follows its extension).</summary>
    public static Task ConvertAsync(string input, string output, params string[] options) =>
        RunAsync("ffmpeg", ["-v", "error", "-y", "-i", input, .. options, output]);

    public static async Task<string> RunAsync(string program, params string[] arguments)
    {
        var startInfo = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = Process.Start(startInfo)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed: {await stderr}");
        }

        return await stdout;
    }

    /// <summary>Live ffmpeg processes started by this test process.</summary>
    public static int RunningChildren()
    {
        var count = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                // /proc/PID/stat: "pid (comm) state ppid ..."
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var close = stat.LastIndexOf(')');
                var comm = stat[(stat.IndexOf('(') + 1)..close];
                var fields = stat[(close + 2)..].Split(' ');
                if (comm == "ffmpeg" && fields[0] != "Z" && int.Parse(fields[1], CultureInfo.InvariantCulture) == Environment.ProcessId)
                {
                    count++;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
            {
                // Not a process directory, or it exited while we looked.
            }
        }

        return count;
    }
}
