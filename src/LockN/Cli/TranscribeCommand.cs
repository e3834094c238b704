using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using LockN.Audio;
using LockN.Http;
using LockN.Models;
using LockN.Transcription;
using Spectre.Console;

namespace LockN.Cli;

/// <summary>
/// <c>lockn transcribe FILE... [--model] [--format] [--language]</c>: the server's decode and Whisper pipeline,
/// in this process, with a progress bar on long files and a closing line with the real-time factor.
/// </summary>
internal static class TranscribeCommand
{
    private const double ProgressBarSeconds = 60;

    public static Command Create()
    {
        var files = new Argument<FileInfo[]>("files") { Arity = ArgumentArity.OneOrMore, Description = "Audio files (wav, mp3, flac, ogg, webm, m4a, ...)" };
        var model = new Option<string?>("--model") { Description = "Model id (default: Transcription:DefaultModel)" };
        var format = new Option<string>("--format") { DefaultValueFactory = _ => "text", Description = "text, srt, vtt or json" };
        format.AcceptOnlyFromAmong("text", "srt", "vtt", "json");
        var language = new Option<string?>("--language") { Description = "ISO-639-1 language code; detected when omitted" };
        var models = CommandHost.ModelsOption();
        var command = new Command("transcribe", "Transcribe audio files in this process") { files, model, format, language, models };
        command.SetAction((parse, cancellationToken) => CommandHost.RunAsync(
            new Dictionary<string, string?> { [ModelDirectories.ConfigurationKey] = parse.GetValue(models) },
            (services, configuration) => services.AddAudioDecoding(configuration).AddTranscription(configuration),
            async host =>
            {
                var directories = host.Get<ModelDirectories>();
                var modelId = parse.GetValue(model) ?? host.Options<TranscriptionOptions>().DefaultModel;
                if (modelId == WhisperModelCatalog.OpenAiAlias)
                {
                    modelId = host.Options<TranscriptionOptions>().DefaultModel;
                }

                var found = WhisperModelCatalog.Scan(directories).FirstOrDefault(m => m.Id.Equals(modelId, StringComparison.OrdinalIgnoreCase));
                if (found is null)
                {
                    await Console.Error.WriteLineAsync($"lockn: model {modelId} not found in {directories}; run `lockn models pull {modelId.Replace("whisper-", "", StringComparison.Ordinal)}` or pass --models DIR.");
                    return 1;
                }

                var decoder = host.Get<AudioDecoder>();
                using var runner = new WhisperRunner(found.Path, Environment.ProcessorCount, host.Options<TranscriptionOptions>().Engine);
                var job = new WhisperJob { Language = parse.GetValue(language) };
                var exitCode = 0;
                foreach (var file in parse.GetValue(files)!)
                {
                    if (!await TranscribeOneAsync(file, decoder, runner, found, job, parse.GetValue(format)!, cancellationToken))
                    {
                        exitCode = 1;
                    }
                }

                return exitCode;
            }));
        return command;
    }

    private static async Task<bool> TranscribeOneAsync(FileInfo file, AudioDecoder decoder, WhisperRunner runner, WhisperModelFile model, WhisperJob job, string format, CancellationToken cancellationToken)
    {
        if (!file.Exists)
        {
            await Console.Error.WriteLineAsync($"lockn: {file.FullName}: no such file");
            return false;
        }

        var wall = Stopwatch.StartNew();
        var decoded = await decoder.DecodeFileAsync(file, cancellationToken);

        if (!decoded.Succeeded)
        {
            await Console.Error.WriteLineAsync($"lockn: {file.Name}: {decoded.Message}");
            return false;
        }

        using var audio = decoded.Audio!;
        using var samples = audio.Samples.OpenMemory();
        var segments = new List<TranscriptSegment>();
        if (audio.DurationSeconds >= ProgressBarSeconds && AnsiConsole.Profile.Capabilities.Interactive)
        {
            await AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask(Markup.Escape(file.Name), maxValue: 100);
                    await foreach (var segment in runner.RunAsync(samples.Memory, job, percent => task.Value = percent, cancellationToken))
                    {
                        segments.Add(segment);
                    }

                    task.Value = 100;
                });
        }
        else
        {
            await foreach (var segment in runner.RunAsync(samples.Memory, job, null, cancellationToken))
            {
                segments.Add(segment);
            }
        }

        var transcript = new Transcript(model.Id, segments.Select(s => s.Language).FirstOrDefault(l => l is { Length: > 0 } and not "auto") ?? job.Language ?? "en",
            audio.DurationSeconds, segments, job.Temperature);
        Console.Out.Write(format switch
        {
            "srt" => TranscriptFormats.ToSrt(transcript),
            "vtt" => TranscriptFormats.ToVtt(transcript),
            "json" => JsonSerializer.Serialize(TranscriptFormats.ToVerboseJson(transcript, translate: false, segments: true, words: false), LockNJson.Context.VerboseTranscription) + "\n",
            _ => TranscriptFormats.ToText(transcript),
        });
        var seconds = wall.Elapsed.TotalSeconds;
        await Console.Error.WriteLineAsync(FormattableString.Invariant(
            $"{file.Name}: {audio.DurationSeconds:0.00} s of audio in {seconds:0.00} s wall, real-time factor {seconds / Math.Max(audio.DurationSeconds, 1e-9):0.000} ({model.Id})"));
        return true;
    }
}
