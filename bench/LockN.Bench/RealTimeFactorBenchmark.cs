using System.Diagnostics;
using System.Globalization;
using LockN.Transcription;

namespace LockN.Bench;

/// <summary>
/// Real-time factor over the corpus for (a) whisper.cpp called directly in this process (LockN's runner) and (b) the same model
/// through POST /v1/audio/transcriptions on localhost, interleaved pass by pass so both see the same machine.
/// </summary>
internal static class RealTimeFactorBenchmark
{
    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options, SpeechCorpus corpus)
    {
        var modelPath = WhisperModelCatalog.Scan(Models.ModelDirectories.Parse(options.ModelsDirectory)).Single(m => m.Id == options.ModelId).Path;
        using var runner = new WhisperRunner(modelPath, Environment.ProcessorCount, WhisperEngineSettings.Packaged);
        await using var server = await BenchServer.StartAsync(options, slots: 1);
        var job = new WhisperJob { Language = "en" };

        // Warm both paths once so neither pays first-use costs inside the measurement.
        await RunDirectAsync(runner, corpus[0], job);
        await server.TranscribeAsync(corpus[0]);

        double direct = 0, http = 0;
        for (var pass = 0; pass < options.Passes; pass++)
        {
            foreach (var utterance in corpus)
            {
                direct += await RunDirectAsync(runner, utterance, job);
                var started = Stopwatch.GetTimestamp();
                await server.TranscribeAsync(utterance);
                http += Stopwatch.GetElapsedTime(started).TotalSeconds;
            }

            Console.Error.WriteLine($"pass {pass + 1}: direct {direct:0.00} s, http {http:0.00} s");
        }

        var audio = corpus.TotalSeconds * options.Passes;
        var (self, worker, _) = BenchServer.PeakResidentBytes();
        return
        [
            "### Real-time factor (wall time / audio time; lower is faster)",
            "",
            "| path | audio s | wall s | RTF |",
            "|---|---:|---:|---:|",
            Row("(a) whisper.cpp in-process (WhisperRunner)", audio, direct),
            Row("(b) POST /v1/audio/transcriptions", audio, http),
            "",
            string.Create(CultureInfo.InvariantCulture, $"**Ratio b/a = {http / direct:0.000}** (target ≤ 1.05). Utterances were sent one by one, alternating a and b, {options.Passes} passes."),
            "",
            $"Peak RSS after this part: bench process (server + in-process runner) {Stats.Mib(self)}, worker process {Stats.Mib(worker)}.",
        ];
    }

    private static async Task<double> RunDirectAsync(WhisperRunner runner, Utterance utterance, WhisperJob job)
    {
        var started = Stopwatch.GetTimestamp();
        await foreach (var _ in runner.RunAsync(utterance.Samples, job, null, CancellationToken.None))
        {
        }

        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    private static string Row(string name, double audio, double wall) =>
        string.Create(CultureInfo.InvariantCulture, $"| {name} | {audio:0.0} | {wall:0.00} | {wall / audio:0.0000} |");
}
