using System.Diagnostics;
using System.Globalization;
using LockN.Audio;
using LockN.Classification;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LockN.Bench;

/// <summary>
/// YAMNet over the 80 ESC-50 clips: (a) ONNX Runtime called directly on the already decoded windows and (b) the
/// same clips through POST /v1/audio/classifications (upload, decode, resample 44.1→16 kHz, schedule, score, JSON),
/// alternating clip by clip in the same run.
/// </summary>
internal static class ClassificationBenchmark
{
    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options)
    {
        var esc50 = Path.Combine(options.SharedDirectory, "audio", "esc50");
        var files = File.ReadLines(Path.Combine(esc50, "labels.csv")).Skip(1).Where(l => l.Length > 0).Select(l => Path.Combine(esc50, l.Split(',')[0])).ToList();
        var decoder = new AudioDecoder(Options.Create(new AudioOptions()), NullLogger<AudioDecoder>.Instance);
        var clips = new List<(byte[] Bytes, float[] Samples, double Seconds, string Name)>();
        foreach (var file in files)
        {
            var bytes = await File.ReadAllBytesAsync(file);
            var decoded = await decoder.DecodeAsync(new MemoryStream(bytes), CancellationToken.None);
            clips.Add((bytes, decoded.Audio!.Samples.ToArray(), decoded.Audio.DurationSeconds, Path.GetFileName(file)));
        }

        await using var server = await BenchServer.StartAsync(options, slots: 1, new Dictionary<string, string?>
        {
            ["Models"] = Path.Combine(options.SharedDirectory, "models"),
            ["Keys:DefaultRequestsPerMinute"] = "1000000", // throughput is measured here, not the per-key limit
        });
        using var direct = new YamnetModel(Path.Combine(options.SharedDirectory, "models", "yamnet", "yamnet.onnx"), new ClassificationOptions().EffectiveThreads); // as the server runs it

        // Warm both paths with every clip, so the JIT's background recompilation is done before the clock runs.
        foreach (var clip in clips)
        {
            direct.Score(clip.Samples, CancellationToken.None);
            await ClassifyAsync(server.Client, clip.Bytes, clip.Name);
        }

        double directSeconds = 0, apiSeconds = 0, decodeSeconds = 0;
        var passes = Math.Max(1, options.Passes);
        for (var pass = 0; pass < passes; pass++)
        {
            foreach (var clip in clips)
            {
                var started = Stopwatch.GetTimestamp();
                direct.Score(clip.Samples, CancellationToken.None);
                directSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
                started = Stopwatch.GetTimestamp();
                await ClassifyAsync(server.Client, clip.Bytes, clip.Name);
                apiSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;

                // The part of (b) that is decoding and resampling, to show where the rest of the API's time goes.
                started = Stopwatch.GetTimestamp();
                await decoder.DecodeAsync(new MemoryStream(clip.Bytes), CancellationToken.None);
                decodeSeconds += Stopwatch.GetElapsedTime(started).TotalSeconds;
            }
        }

        // Throughput with two callers on each side: the API overlaps one upload's decoding with another's inference,
        // and ONNX Runtime gets the same chance to fill both cores from two threads. The paths take turns a pass at a
        // time, so a slow stretch of the shared machine falls on both rather than on whichever ran then.
        const int Callers = 2;
        double directParallel = 0, apiParallel = 0;
        for (var pass = 0; pass < passes; pass++)
        {
            directParallel += await TimeParallelAsync(clips.Count, Callers, i =>
            {
                direct.Score(clips[i].Samples, CancellationToken.None);
                return Task.CompletedTask;
            });
            apiParallel += await TimeParallelAsync(clips.Count, Callers, i => ClassifyAsync(server.Client, clips[i].Bytes, clips[i].Name));
        }

        var count = clips.Count * passes;
        var audio = clips.Sum(c => c.Seconds) * passes;
        string Row(string name, double wall) => string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {count} | {audio:0.0} | {wall:0.000} | {count / wall:0.0} | {audio / wall:0} |");
        var bestDirect = Math.Min(directSeconds, directParallel);
        var bestApi = Math.Min(apiSeconds, apiParallel);
        return
        [
            "### Sound-event classification",
            "",
            $"The {clips.Count} ESC-50 clips (5 s, 44.1 kHz WAV), {passes} passes: one at a time alternating (a) and (b) clip by clip, then {Callers} callers at once on each path, alternating pass by pass.",
            "",
            "| path | clips | audio s | wall s | clips/s | × real time |",
            "|---|---:|---:|---:|---:|---:|",
            Row("(a) ONNX Runtime directly on decoded 16 kHz samples, one at a time", directSeconds),
            Row("(b) POST /v1/audio/classifications, one at a time", apiSeconds),
            Row("(c) of (b): WAV decoding and 44.1 → 16 kHz resampling alone", decodeSeconds),
            Row($"(a) directly, {Callers} threads", directParallel),
            Row($"(b) API, {Callers} clients", apiParallel),
            "",
            string.Create(CultureInfo.InvariantCulture, $"One at a time (latency): API / direct = {directSeconds / apiSeconds:0.00}×; per clip, the API adds {(apiSeconds - directSeconds) * 1000 / count:0.00} ms, of which decoding and resampling {decodeSeconds * 1000 / count:0.00} ms."),
            string.Create(CultureInfo.InvariantCulture, $"**Throughput, best of each path: API / direct = {bestDirect / bestApi:0.00}×** (target ≥ 0.8×)."),
        ];
    }

    private static async Task<double> TimeParallelAsync(int jobs, int callers, Func<int, Task> job)
    {
        var next = -1;
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < jobs)
            {
                await job(i);
            }
        })));
        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    private static async Task ClassifyAsync(HttpClient client, byte[] bytes, string name)
    {
        using var form = new MultipartFormDataContent { { new ByteArrayContent(bytes), "file", name } };
        using var response = await client.PostAsync("/v1/audio/classifications", form);
        response.EnsureSuccessStatusCode();
        await response.Content.LoadIntoBufferAsync();
    }
}
