using System.CommandLine;
using LockN.Transcription;
using LockN.Transcription.Workers;

namespace LockN.Cli;

/// <summary><c>lockn worker</c> (hidden): a Whisper worker process driven by the server over stdin/stdout.</summary>
internal static class WorkerCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Path of the GGML model file" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var noWarmUp = new Option<bool>("--no-warm-up");
        var lanes = new Option<int>("--lanes") { DefaultValueFactory = _ => 1, Description = "Jobs run side by side on the one model (the model's slots)" };
        var nativeRuntime = new Option<string?>("--native-runtime") { Description = "Directory of whisper.cpp libraries (Transcription:NativeRuntimePath)" };
        var noFlashAttention = new Option<bool>("--no-flash-attention");
        var probe = new Option<bool>("--probe-runtime") { Description = "Load the runtime, report it and exit" };
        var command = new Command("worker", "Whisper worker process (started by the server)") { model, threads, lanes, noWarmUp, nativeRuntime, noFlashAttention, probe };
        command.Hidden = true;
        command.SetAction(async parse =>
        {
            var engine = new WhisperEngineSettings(parse.GetValue(nativeRuntime), !parse.GetValue(noFlashAttention));
            await using var output = Console.OpenStandardOutput();
            if (parse.GetValue(probe))
            {
                return WhisperWorkerHost.ProbeRuntime(engine, output);
            }

            if (parse.GetValue(model) is not { } modelPath)
            {
                await Console.Error.WriteLineAsync("lockn worker: --model is required");
                return 2;
            }

            await using var input = Console.OpenStandardInput();
            return await WhisperWorkerHost.RunAsync(modelPath, parse.GetValue(threads), Math.Clamp(parse.GetValue(lanes), 1, 64), !parse.GetValue(noWarmUp), engine, input, output);
        });
        return command;
    }
}
