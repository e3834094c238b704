using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;

namespace LockN.Tests.Audio;

/// <summary>A server that refuses audio over a second, so whatever in the corpus still decodes costs next to nothing.</summary>
public sealed class MalformedCorpusFixture : LockNServerFixture
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Audio:MaxDurationSeconds"] = "1",
        ["Keys:DefaultRequestsPerMinute"] = "1000000", // two thousand requests in a minute or two
    };
}

/// <summary>The reliability harness: a thousand malformed uploads against both audio endpoints of a real server.</summary>
public class MalformedCorpusTests(MalformedCorpusFixture server, ITestOutputHelper output) : IClassFixture<MalformedCorpusFixture>
{
    public const int Cases = 1000;

    private static readonly (string Path, (string, string)[] Fields)[] Endpoints =
    [
        // Temperature 1: one decoding pass, where the test weights' random text would be decoded again at each fallback temperature.
        ("/v1/audio/transcriptions", [("model", "whisper-1"), ("response_format", "verbose_json"), ("temperature", "1")]),
        ("/v1/audio/classifications", []),
    ];

    [Fact]
    public async Task A_thousand_malformed_uploads_get_openai_errors_from_both_audio_endpoints_and_leave_no_ffmpeg_behind()
    {
        var recordings = await MalformedAudio.EncodeRecordingsAsync(TestAssets.JfkWav, Path.Combine(server.DataDirectory, "recordings"));
        var corpus = MalformedAudio.Generate(recordings, Cases).ToList();
        var valid = recordings["wav"][..(44 + 16000)]; // half a second: decodes, and is under the duration limit
        await AssertServesAsync(valid); // YAMNet loaded, so what follows measures the corpus alone
        var rssBefore = ResidentBytes("VmRSS:");

        var counts = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var problems = new ConcurrentQueue<string>();
        var decoded = new ConcurrentDictionary<int, bool>();
        var peakRss = 0L;
        var started = Stopwatch.StartNew();
        var requests = corpus.SelectMany(upload => Endpoints.Select(endpoint => (upload, endpoint)));
        await Parallel.ForEachAsync(requests, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = TestContext.Current.CancellationToken }, async (request, cancellationToken) =>
        {
            var (upload, (path, fields)) = request;
            using var response = await server.Client.PostAsync(path, upload.ToContent(fields), cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            var status = (int)response.StatusCode;
            counts.AddOrUpdate($"{path} {status}", 1, (_, n) => n + 1);
            if (status == 200)
            {
                decoded[upload.Index] = true;
            }

            if (await ProblemAsync(upload, status, text) is { } problem)
            {
                problems.Enqueue($"{path} {upload}: {status} {problem}: {text[..Math.Min(text.Length, 300)]}");
            }

            var rss = ResidentBytes("VmRSS:");
            long seen;
            while (rss > (seen = Interlocked.Read(ref peakRss)) && Interlocked.CompareExchange(ref peakRss, rss, seen) != seen)
            {
            }
        });
        var elapsed = started.Elapsed;

        foreach (var (key, count) in counts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"{key}: {count}");
        }

        foreach (var kind in corpus.GroupBy(c => c.Kind.Split('-')[0]).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"  {kind.Key}: {kind.Count()} cases, {kind.Count(c => decoded.ContainsKey(c.Index))} answered 200 by an endpoint");
        }

        output.WriteLine($"{corpus.Count * Endpoints.Length} requests in {elapsed.TotalSeconds:0.0} s; RSS {Mib(rssBefore)} before, peak {Mib(peakRss)} during, {Mib(ResidentBytes("VmRSS:"))} after");
        foreach (var problem in problems.Take(20))
        {
            output.WriteLine(problem);
        }

        Assert.Empty(problems);
        await AssertServesAsync(valid);
        await LockNServerFixture.WaitForAsync(() => Task.FromResult(Ffmpeg.RunningChildren() == 0));
        Assert.True(peakRss - rssBefore < 512L * 1024 * 1024, $"the server grew by {Mib(peakRss - rssBefore)} over the corpus");
    }

    /// <summary>What is wrong with an answer, or null: a 4xx in the OpenAI shape, or a 200 for audio that really decodes.</summary>
    private static async Task<string?> ProblemAsync(MalformedUpload upload, int status, string text)
    {
        JsonElement body;
        try
        {
            body = JsonDocument.Parse(text).RootElement;
        }
        catch (JsonException)
        {
            return "not JSON";
        }

        if (status == 200)
        {
            if (!body.TryGetProperty("duration", out var duration) || duration.GetDouble() < 0)
            {
                return "a 200 without a duration";
            }

            return upload.MayDecode || await ReferenceDecodesAsync(upload.File) ? null : "a 200 for a file the reference ffmpeg cannot decode";
        }

        if (status is < 400 or >= 500)
        {
            return "not a 4xx";
        }

        if (!body.TryGetProperty("error", out var error) ||
            error.GetProperty("message").GetString() is not { Length: > 0 } message ||
            error.GetProperty("type").GetString() is not { Length: > 0 } ||
            !error.TryGetProperty("param", out _) || !error.TryGetProperty("code", out _))
        {
            return "not an OpenAI error";
        }

        return new[] { "Exception", "System.", "Microsoft.", "Kestrel", "   at ", ".cs:line", " @ 0x" }.FirstOrDefault(w => message.Contains(w, StringComparison.Ordinal)) is { } word
            ? $"'{word}' in the message"
            : null;
    }

    private static async Task<bool> ReferenceDecodesAsync(byte[] file)
    {
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(path, file);
            await Ffmpeg.RunAsync("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-");
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        finally
        {
            File.Delete(path);
        }
    }

    private async Task AssertServesAsync(byte[] wav)
    {
        using var live = await server.AnonymousClient.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        foreach (var (path, fields) in Endpoints)
        {
            var upload = new MalformedUpload(-1, "valid", wav, "a.wav", "audio/wav", UploadShape.Form, MayDecode: true);
            using var response = await server.Client.PostAsync(path, upload.ToContent(fields));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    private static long ResidentBytes(string field) =>
        File.ReadLines("/proc/self/status").Where(l => l.StartsWith(field, StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024).Single();

    private static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):0} MiB";
}
