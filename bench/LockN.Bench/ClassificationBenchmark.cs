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
            clips.Add((bytes, decoded.Audio!.Samples, decoded.Audio.DurationSeconds, Path.GetFileName(file)));
        }

        await using var server = await BenchServer.StartAsync(options, slots: 1, new Dictionary<string, string?> { ["Models"] = Path.Combine(options.SharedDirectory, "models") });
        using var direct = new YamnetModel(Path.Combine(options.SharedDirectory, "models", "yamnet", "yamnet.onnx"), Environment.ProcessorCount);

        // Warm both paths.
        direct.Score(clips[0].Samples, CancellationToken.None);
        await ClassifyAsync(server.Client, clips[0].Bytes, clips[0].Name);

        double directSeconds = 0, apiSeconds = 0;
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
            }
        }

        var count = clips.Count * passes;
        var audio = clips.Sum(c => c.Seconds) * passes;
        string Row(string name, double wall) => string.Create(CultureInfo.InvariantCulture,
            $"| {name} | {count} | {audio:0.0} | {wall:0.000} | {count / wall:0.0} | {audio / wall:0} |");
        return
        [
            "### Sound-event classification (issue 4)",
            "",
            $"The {clips.Count} ESC-50 clips (5 s, 44.1 kHz WAV), {passes} passes, one at a time, alternating (a) and (b).",
            "",
            "| path | clips | audio s | wall s | clips/s | × real time |",
            "|---|---:|---:|---:|---:|---:|",
            Row("(a) ONNX Runtime directly on decoded 16 kHz samples", directSeconds),
            Row("(b) POST /v1/audio/classifications", apiSeconds),
            "",
            string.Create(CultureInfo.InvariantCulture, $"**API / direct throughput = {directSeconds / apiSeconds:0.00}×** (target ≥ 0.8×)."),
        ];
    }

    private static async Task ClassifyAsync(HttpClient client, byte[] bytes, string name)
    {
        using var form = new MultipartFormDataContent { { new ByteArrayContent(bytes), "file", name } };
        using var response = await client.PostAsync("/v1/audio/classifications", form);
        response.EnsureSuccessStatusCode();
        await response.Content.LoadIntoBufferAsync();
    }
}
