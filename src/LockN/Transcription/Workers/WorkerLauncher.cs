using System.Diagnostics;
using System.Globalization;

namespace LockN.Transcription.Workers;

/// <summary>Knows how to start <c>lockn worker</c>: from the lockn executable when we are it, else beside our assembly.</summary>
internal sealed class WorkerLauncher
{
    private readonly string fileName;
    private readonly string[] prefix;

    public WorkerLauncher()
    {
        var self = Environment.ProcessPath;
        var appHost = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "lockn.exe" : "lockn");
        if (self is not null && Path.GetFileName(self) is "lockn" or "lockn.exe")
        {
            (fileName, prefix) = (self, []);
        }
        else if (File.Exists(appHost))
        {
            (fileName, prefix) = (appHost, []);
        }
        else
        {
            // Under a test host or `dotnet lockn.dll`: run the assembly with the same dotnet.
            var dll = typeof(WorkerLauncher).Assembly.Location;
            (fileName, prefix) = (self ?? "dotnet", ["exec", dll]);
        }
    }

    public ProcessStartInfo CreateStartInfo(string modelPath, int threads, bool warmUp)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        foreach (var arg in prefix)
        {
            startInfo.ArgumentList.Add(arg);
        }

        startInfo.ArgumentList.Add("worker");
        startInfo.ArgumentList.Add("--model");
        startInfo.ArgumentList.Add(modelPath);
        startInfo.ArgumentList.Add("--threads");
        startInfo.ArgumentList.Add(threads.ToString(CultureInfo.InvariantCulture));
        if (!warmUp)
        {
            startInfo.ArgumentList.Add("--no-warm-up");
        }

        // The worker inherits the environment but must not bind the server's address or read its secrets.
        startInfo.Environment.Remove("LOCKN_URLS");
        startInfo.Environment.Remove("ASPNETCORE_URLS");
        startInfo.Environment.Remove("LOCKN_ADMIN_KEY");
        return startInfo;
    }
}
