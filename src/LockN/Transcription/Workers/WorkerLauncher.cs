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

    public ProcessStartInfo CreateStartInfo(string modelPath, WorkerSettings settings)
    {
        var startInfo = CreateStartInfo(settings.Engine);
        startInfo.ArgumentList.Add("--model");
        startInfo.ArgumentList.Add(modelPath);
        startInfo.ArgumentList.Add("--threads");
        startInfo.ArgumentList.Add(settings.Threads.ToString(CultureInfo.InvariantCulture));
        startInfo.ArgumentList.Add("--lanes");
        startInfo.ArgumentList.Add(settings.Lanes.ToString(CultureInfo.InvariantCulture));
        if (!settings.WarmUp)
        {
            startInfo.ArgumentList.Add("--no-warm-up");
        }

        return startInfo;
    }

    /// <summary><c>lockn worker --probe-runtime</c>: loads the runtime, reports it on stdout and exits.</summary>
    public ProcessStartInfo CreateProbeStartInfo(WhisperEngineSettings engine)
    {
        var startInfo = CreateStartInfo(engine);
        startInfo.ArgumentList.Add("--probe-runtime");
        return startInfo;
    }

    private ProcessStartInfo CreateStartInfo(WhisperEngineSettings engine)
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
        if (engine.NativeRuntimePath is { Length: > 0 } runtime)
        {
            startInfo.ArgumentList.Add("--native-runtime");
            startInfo.ArgumentList.Add(Path.GetFullPath(runtime));
        }

        if (!engine.FlashAttention)
        {
            startInfo.ArgumentList.Add("--no-flash-attention");
        }

        // A worker is one model and a few threads: it needs neither the server's garbage collector (a heap per core)
        // nor glibc's arena per thread, which each keep freed whisper.cpp buffers resident (8 per core by default).
        startInfo.Environment["DOTNET_gcServer"] = "0";
        startInfo.Environment["DOTNET_GCConserveMemory"] = "7";
        startInfo.Environment["MALLOC_ARENA_MAX"] = "2";

        // The worker inherits the environment but must not bind the server's address or read its secrets.
        startInfo.Environment.Remove("LOCKN_URLS");
        startInfo.Environment.Remove("ASPNETCORE_URLS");
        startInfo.Environment.Remove("LOCKN_ADMIN_KEY");
        return startInfo;
    }
}
