using System.CommandLine;
using LockN.Transcription.Workers;

namespace LockN.Cli;

/// <summary><c>lockn worker</c> (hidden): a Whisper worker process driven by the server over stdin/stdout.</summary>
internal static class WorkerCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Required = true, Description = "Path of the GGML model file" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var noWarmUp = new Option<bool>("--no-warm-up");
        var command = new Command("worker", "Whisper worker process (started by the server)") { model, threads, noWarmUp };
        command.Hidden = true;
        command.SetAction(async parse =>
        {
            await using var input = Console.OpenStandardInput();
            await using var output = Console.OpenStandardOutput();
            return await WhisperWorkerHost.RunAsync(parse.GetValue(model)!, parse.GetValue(threads), !parse.GetValue(noWarmUp), input, output);
        });
        return command;
    }
}
