using System.Text.Json;
using LockN.Transcription.Workers;
using Microsoft.Extensions.Options;

namespace LockN.Transcription;

/// <summary>
/// Refuses to start on a <c>Transcription:NativeRuntimePath</c> that does not load: a worker process probes it before
/// the server listens (the server itself never loads whisper.cpp), and its one-line reason names the key.
/// </summary>
internal sealed class NativeRuntimeValidator : IValidateOptions<TranscriptionOptions>
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(60);

    public ValidateOptionsResult Validate(string? name, TranscriptionOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.NativeRuntimePath))
        {
            return ValidateOptionsResult.Success;
        }

        var problem = Probe(options.Engine);
        return problem is null ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problem);
    }

    private static string? Probe(WhisperEngineSettings engine)
    {
        using var process = System.Diagnostics.Process.Start(new WorkerLauncher().CreateProbeStartInfo(engine));
        if (process is null)
        {
            return $"{WhisperRuntime.NativeRuntimeKey}: the worker process that checks it did not start.";
        }

        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        var line = process.StandardOutput.ReadLine();
        if (!process.WaitForExit(ProbeTimeout))
        {
            process.Kill();
            return $"{WhisperRuntime.NativeRuntimeKey}: loading {engine.NativeRuntimePath} did not finish within {ProbeTimeout.TotalSeconds:0} s.";
        }

        var report = line is { Length: > 0 } && line[0] == '{' ? JsonSerializer.Deserialize<WorkerEvent>(line, WorkerProtocol.Json) : null;
        return report switch
        {
            { Type: WorkerEventType.Ready } => null,
            { Message: { } message } => message,
            // A library that crashes the process while it loads (a CPU without the instructions it was built for).
            _ => $"{WhisperRuntime.NativeRuntimeKey}: loading {engine.NativeRuntimePath} ended the process (exit code {process.ExitCode}){LastLine(stderr.Result)}",
        };
    }

    private static string LastLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is { Length: > 0 } lines ? ": " + lines[^1] : ".";
}
