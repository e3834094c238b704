using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;

namespace LockN.Bench;

/// <summary>
/// One model saturated, another's latency: an 11 s transcription (jfk.wav) alone and while two clients loop
/// classification, and a 5 s classification (an ESC-50 dog clip) alone and while two clients loop transcription. The
/// CPU-sharing policy (README, "Sharing the cores") promises at most 2× the solo latency either way.
/// </summary>
internal static class FairnessBenchmark
{
    private const int TranscriptionSamples = 9;
    private const int ClassificationSamples = 15;

    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options, IDictionary<string, string?>? settings = null)
    {
        var speech = await File.ReadAllBytesAsync(Path.Combine(options.SharedDirectory, "audio", "speech", "jfk", "jfk.wav"));
        var sound = await File.ReadAllBytesAsync(Path.Combine(options.SharedDirectory, "audio", "esc50", "4-182395-A-0.wav"));
        var extra = new Dictionary<string, string?>
        {
            ["Models"] = Path.Combine(options.SharedDirectory, "models"),
            ["Keys:DefaultRequestsPerMinute"] = "1000000",
            ["Classification:LoadAtStart"] = "true",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            extra[key] = value;
        }

        await using var server = await BenchServer.StartAsync(options, slots: 1, extra);
        async Task<double> Transcribe()
        {
            var started = Stopwatch.GetTimestamp();
            using var form = new MultipartFormDataContent { { new ByteArrayContent(speech), "file", "jfk.wav" }, { new StringContent("whisper-1"), "model" } };
            using var response = await server.Client.PostAsync("/v1/audio/transcriptions", form);
            response.EnsureSuccessStatusCode();
            _ = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
            return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }

        async Task<double> Classify()
        {
            var started = Stopwatch.GetTimestamp();
            using var form = new MultipartFormDataContent { { new ByteArrayContent(sound), "file", "dog.wav" } };
            using var response = await server.Client.PostAsync("/v1/audio/classifications", form);
            response.EnsureSuccessStatusCode();
            await response.Content.LoadIntoBufferAsync();
            return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        }

        // Warm both paths (JIT, first whisper.cpp run, ONNX Runtime's first runs).
        for (var i = 0; i < 3; i++)
        {
            await Transcribe();
            await Classify();
        }

        var transcribeAlone = await Median(Transcribe, TranscriptionSamples);
        var classifyAlone = await Median(Classify, ClassificationSamples);
        var (transcribeLoaded, classified) = await WhileLooping(Classify, () => Median(Transcribe, TranscriptionSamples));
        var (classifyLoaded, transcribed) = await WhileLooping(Transcribe, () => Median(Classify, ClassificationSamples));

        string Row(string what, double alone, double loaded, string load, int done) =>
            $"| {what} | {alone:0} ms | {loaded:0} ms | {(loaded / alone).ToString("0.00", CultureInfo.InvariantCulture)}× | {load} ({done} done meanwhile) |";
        var threads = settings is { Count: > 0 } ? " with " + string.Join(", ", settings.Select(s => $"`{s.Key}={s.Value}`")) : " on the defaults";
        return
        [
            $"### Fair CPU between models{threads}",
            "",
            $"Median of {TranscriptionSamples} transcriptions of jfk.wav (11 s) and of {ClassificationSamples} classifications of an ESC-50 dog clip (5 s), {Environment.ProcessorCount} cores.",
            "",
            "| request | alone | while the other model is saturated | ratio | load |",
            "|---|---|---|---|---|",
            Row("transcription, 11 s", transcribeAlone, transcribeLoaded, "two clients looping classification", classified),
            Row("classification, 5 s", classifyAlone, classifyLoaded, "two clients looping transcription", transcribed),
        ];
    }

    private static async Task<double> Median(Func<Task<double>> request, int count)
    {
        var times = new List<double>();
        for (var i = 0; i < count; i++)
        {
            times.Add(await request());
        }

        return Stats.Percentile(times, 50);
    }

    /// <summary>Runs <paramref name="measure"/> while two clients send <paramref name="load"/> back to back.</summary>
    private static async Task<(double Result, int LoadDone)> WhileLooping(Func<Task<double>> load, Func<Task<double>> measure)
    {
        using var stop = new CancellationTokenSource();
        var done = 0;
        async Task Loop()
        {
            while (!stop.IsCancellationRequested)
            {
                await load();
                Interlocked.Increment(ref done);
            }
        }

        var loops = new[] { Loop(), Loop() };
        await Task.Delay(1000); // both clients busy before the clock runs
        var result = await measure();
        var loadDone = Volatile.Read(ref done);
        await stop.CancelAsync();
        await Task.WhenAll(loops);
        return (result, loadDone);
    }
}
