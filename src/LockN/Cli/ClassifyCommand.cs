using System.CommandLine;
using System.Globalization;
using LockN.Audio;
using LockN.Classification;
using LockN.Models;
using Spectre.Console;

namespace LockN.Cli;

/// <summary><c>lockn classify FILE... [--top-k N] [--events]</c>: YAMNet sound events in this process, as a table.</summary>
internal static class ClassifyCommand
{
    public static Command Create()
    {
        var files = new Argument<FileInfo[]>("files") { Arity = ArgumentArity.OneOrMore, Description = "Audio files (wav, mp3, flac, ogg, ...)" };
        var topK = new Option<int>("--top-k") { DefaultValueFactory = _ => 5, Description = "Labels per file" };
        var events = new Option<bool>("--events") { Description = "Also list events (runs of windows above the threshold)" };
        var threshold = new Option<double>("--threshold") { DefaultValueFactory = _ => 0, Description = "Lowest score reported (events use 0.3 when unset)" };
        var excludeGeneric = new Option<bool>("--exclude-generic") { Description = "Leave catch-all labels (Silence, Animal, Vehicle, ...) out" };
        var models = CommandHost.ModelsOption();
        var command = new Command("classify", "Classify sound events in audio files with YAMNet, in this process") { files, topK, events, threshold, excludeGeneric, models };
        command.SetAction((parse, cancellationToken) => CommandHost.RunAsync(
            new Dictionary<string, string?> { [ModelDirectories.ConfigurationKey] = parse.GetValue(models) },
            (services, configuration) => services.AddAudioDecoding(configuration).AddClassification(configuration),
            async services =>
            {
                var host = services.Get<YamnetHost>();
                if (!host.IsAvailable)
                {
                    await Console.Error.WriteLineAsync($"lockn: {services.Options<ClassificationOptions>().ModelFile} not found in {services.Get<ModelDirectories>()}; pass --models DIR.");
                    return 1;
                }

                var model = await host.GetModelAsync();
                var query = new ClassificationQuery
                {
                    TopK = Math.Clamp(parse.GetValue(topK), 1, model.Classes.Count),
                    Threshold = parse.GetValue(threshold),
                    ExcludeGeneric = parse.GetValue(excludeGeneric),
                    Events = parse.GetValue(events),
                };
                var decoder = services.Get<AudioDecoder>();
                var table = new Table().AddColumns("file", "seconds", "label", "score");
                var eventTable = new Table().AddColumns("file", "event", "start s", "end s", "peak");
                var exitCode = 0;
                foreach (var file in parse.GetValue(files)!)
                {
                    var decoded = await decoder.DecodeFileAsync(file, cancellationToken);

                    if (!decoded.Succeeded)
                    {
                        await Console.Error.WriteLineAsync($"lockn: {file.Name}: {decoded.Message}");
                        exitCode = 1;
                        continue;
                    }

                    ClassificationResult result;
                    using (var audio = decoded.Audio!)
                    {
                        result = SoundClassifier.Classify(model, audio, host.GenericLabels, query, cancellationToken);
                    }

                    foreach (var label in result.Labels)
                    {
                        table.AddRow(Markup.Escape(file.Name), Number(result.Duration), Markup.Escape(label.Label), Number(label.Score));
                    }

                    foreach (var soundEvent in result.Events ?? [])
                    {
                        eventTable.AddRow(Markup.Escape(file.Name), Markup.Escape(soundEvent.Label), Number(soundEvent.Start), Number(soundEvent.End), Number(soundEvent.Peak));
                    }
                }

                AnsiConsole.Write(table);
                if (query.Events)
                {
                    AnsiConsole.Write(eventTable);
                }

                return exitCode;
            }));
        return command;
    }

    private static string Number(double value) => value.ToString("0.000", CultureInfo.InvariantCulture);
}
