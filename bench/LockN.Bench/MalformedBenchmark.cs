using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using LockN.Tests.Audio;

namespace LockN.Bench;

/// <summary>
/// The reliability harness at scale: the tests' malformed-upload corpus (any size) against both audio endpoints, with
/// what the server answered, its peak memory and the ffmpeg processes left behind.
/// </summary>
internal static class MalformedBenchmark
{
    private static readonly (string Path, (string, string)[] Fields)[] Endpoints =
    [
        // Temperature 1: one decoding pass, where the test weights' random text would be decoded again at each fallback temperature.
        ("/v1/audio/transcriptions", [("model", "whisper-1"), ("response_format", "verbose_json"), ("temperature", "1")]),
        ("/v1/audio/classifications", []),
    ];

    public static async Task<IReadOnlyList<string>> RunAsync(BenchOptions options)
    {
        var cases = options.Cases ?? 10_000;
        var recordings = await MalformedAudio.EncodeRecordingsAsync(
            Path.Combine(options.SharedDirectory, "audio", "speech", "jfk", "jfk.wav"), Path.Combine(Path.GetTempPath(), "lockn-malformed-" + Guid.NewGuid().ToString("N")));
        await using var server = await BenchServer.StartAsync(options, slots: 1, new Dictionary<string, string?>
        {
            ["Models"] = Path.Combine(options.SharedDirectory, "models"), // YAMNet too
            ["Audio:MaxDurationSeconds"] = "1", // what still decodes is refused past a second, as in the test
            ["Keys:DefaultRequestsPerMinute"] = "1000000",
        });

        var counts = new ConcurrentDictionary<(string Path, int Status), int>();
        var serverErrors = 0;
        var started = Stopwatch.StartNew();
        var requests = MalformedAudio.Generate(recordings, cases).SelectMany(upload => Endpoints.Select(endpoint => (upload, endpoint)));
        await Parallel.ForEachAsync(requests, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (request, cancellationToken) =>
        {
            var (upload, (path, fields)) = request;
            using var response = await server.Client.PostAsync(path, upload.ToContent(fields), cancellationToken);
            _ = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            counts.AddOrUpdate((path, (int)response.StatusCode), 1, (_, n) => n + 1);
            if ((int)response.StatusCode >= 500)
            {
                Interlocked.Increment(ref serverErrors);
            }
        });
        var elapsed = started.Elapsed;
        var live = (int)(await server.Client.GetAsync("/health/live")).StatusCode;
        var ffmpegLeft = Ffmpeg.RunningChildren();
        var (self, maxWorker, _) = BenchServer.PeakResidentBytes();

        var statuses = counts.Keys.Select(k => k.Status).Distinct().Order().ToArray();
        var report = new List<string>
        {
            $"## Malformed uploads ({cases} cases × {Endpoints.Length} endpoints, 4 at a time, Audio:MaxDurationSeconds=1)",
            "",
            "| endpoint | " + string.Join(" | ", statuses) + " |",
            "|---|" + string.Concat(statuses.Select(_ => "---:|")),
        };
        foreach (var (path, _) in Endpoints)
        {
            report.Add($"| `{path}` | " + string.Join(" | ", statuses.Select(s => counts.GetValueOrDefault((path, s)).ToString(CultureInfo.InvariantCulture))) + " |");
        }

        report.Add("");
        report.Add($"{cases * Endpoints.Length} requests in {elapsed.TotalSeconds:0} s ({cases * Endpoints.Length / elapsed.TotalSeconds:0.0} requests/s); 5xx answers: {serverErrors}; " +
                   $"/health/live afterwards: {live}; ffmpeg processes left: {ffmpegLeft}; peak RSS: bench process (server) {Stats.Mib(self)}, Whisper worker {Stats.Mib(maxWorker)}.");
        return report;
    }
}
