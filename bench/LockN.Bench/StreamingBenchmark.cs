using System.Buffers.Binary;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Streaming;

namespace LockN.Bench;

/// <summary>
/// GET /v1/audio/stream at 1× real time: (a) latency from the end of each utterance to its transcript.completed on
/// one stream of the whole corpus, (b) the same latency with N streams at once, N growing until p95 passes 2 s.
/// The stream is the corpus' utterances back to back, each followed by <see cref="GapSeconds"/> of silence; an
/// utterance's end of speech is the end of its file in the stream. Never depends on transcript text (the test
/// weights produce none): only on the start/end the server reports for each completed utterance.
/// </summary>
internal static class StreamingBenchmark
{
    private const double GapSeconds = 1.5;
    private const double TargetP95Seconds = 2.0;
    public const int BytesPerSecond = 16_000 * 2; // pcm_s16le mono at 16 kHz
    private static readonly int[] StreamCounts = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]; // 32 = Streaming:MaxStreams

    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options, SpeechCorpus corpus)
    {
        // The whole of ../shared/models, so Silero VAD (silero/silero_vad.onnx) is found beside the Whisper models.
        await using var server = await BenchServer.StartAsync(options, slots: 1, new Dictionary<string, string?> { ["Models"] = Path.Combine(options.SharedDirectory, "models") });
        var address = server.Client.BaseAddress!;

        // One key per stream, as separate clients would have (a key may hold Streaming:MaxStreamsPerKey = 8 streams).
        var keys = new List<string>();
        foreach (var _ in Enumerable.Range(0, StreamCounts[^1]))
        {
            using var response = await server.Client.PostAsJsonAsync("/admin/keys", new { name = $"bench-stream-{keys.Count + 1}", scopes = new[] { "stream" } });
            response.EnsureSuccessStatusCode();
            keys.Add((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!);
        }

        // Warm-up: one short stream as fast as possible (JIT, Silero session, the Whisper worker's first run).
        await RunStreamAsync(address, keys[0], Plan(corpus.Take(1)), speed: 0);

        var whole = Plan(corpus, options.StreamSeconds);
        Console.Error.WriteLine(FormattableString.Invariant($"streaming (a): one stream of {whole.Utterances.Count} utterances, {whole.Seconds:0.0} s at 1× real time"));
        var single = await RunStreamAsync(address, keys[0], whole, speed: 1);
        var lines = new List<string>
        {
            "### Live streaming",
            "",
            FormattableString.Invariant($"GET /v1/audio/stream on localhost with the server's default streaming settings (1 Whisper slot, Silero VAD with 500 ms silence, partials every 1 s when the slot is idle), pcm_s16le 16 kHz sent in 20 ms binary messages at 1× real time. The stream is the corpus' utterances back to back, each followed by {GapSeconds} s of silence. **Latency** = arrival of the transcript.completed covering an utterance − (send start + the utterance's end offset in the stream): it includes the VAD's 500 ms of silence before an utterance ends, waiting for the slot and the Whisper run."),
            "",
            whole.Utterances.Count == corpus.Count ? "(a) One stream of the whole corpus:" : FormattableString.Invariant($"(a) One stream of the first {whole.Utterances.Count} of the corpus' {corpus.Count} utterances:"),
            "",
            "| utterances | stream s | latency p50 s | latency p95 s | max s | not transcribed | error events |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            FormattableString.Invariant($"| {whole.Utterances.Count} | {whole.Seconds:0.0} | {Stats.Percentile(single.Latencies, 50):0.00} | {Stats.Percentile(single.Latencies, 95):0.00} | {Max(single.Latencies):0.00} | {single.Missed} | {single.Errors} |"),
            "",
        };

        // (b) N streams at once, each a window of the stream that starts at a different utterance so that their
        // ends of speech do not line up.
        var window = options.StreamSeconds is { } limit ? Math.Min(limit, ConcurrentSeconds) : ConcurrentSeconds;
        lines.Add(FormattableString.Invariant($"(b) N concurrent streams at 1× real time, each ~{window:0} s of the stream starting at a different utterance (stream k at utterance 7k), one API key each; N grows until p95 > {TargetP95Seconds:0} s:"));
        lines.Add("");
        lines.Add("| streams | utterances | latency p50 s | latency p95 s | max s | not transcribed | error events | refused |");
        lines.Add("|---:|---:|---:|---:|---:|---:|---:|---:|");
        int? largest = null;
        foreach (var count in StreamCounts)
        {
            var plans = Enumerable.Range(0, count).Select(k => Plan(Rotate(corpus, 7 * k), window)).ToList();
            var results = await Task.WhenAll(plans.Select((plan, k) => RunStreamAsync(address, keys[k], plan, speed: 1)));
            var latencies = results.SelectMany(r => r.Latencies).ToList();
            var p95 = Stats.Percentile(latencies, 95);
            lines.Add(FormattableString.Invariant(
                $"| {count} | {plans.Sum(p => p.Utterances.Count)} | {Stats.Percentile(latencies, 50):0.00} | {p95:0.00} | {Max(latencies):0.00} | {results.Sum(r => r.Missed)} | {results.Sum(r => r.Errors)} | {results.Count(r => r.Refused)} |"));
            Console.Error.WriteLine(lines[^1]);
            var ok = p95 <= TargetP95Seconds && results.All(r => !r.Refused && r.Missed == 0);
            if (!ok)
            {
                break;
            }

            largest = count;
        }

        lines.Add("");
        lines.Add(largest is { } n
            ? FormattableString.Invariant($"**Largest N with p95 ≤ {TargetP95Seconds:0} s (every utterance transcribed): {n}{(n == StreamCounts[^1] ? " (the node's stream limit; not reached)" : "")}.**")
            : FormattableString.Invariant($"**No N met p95 ≤ {TargetP95Seconds:0} s.**"));
        return lines;
    }

    /// <summary>The length of each stream in (b), so the whole benchmark stays near ten minutes.</summary>
    private const double ConcurrentSeconds = 45;

    private static double Max(IReadOnlyCollection<double> values) => values.Count == 0 ? double.NaN : values.Max();

    private static IEnumerable<Utterance> Rotate(SpeechCorpus corpus, int first) =>
        corpus.Skip(first % corpus.Count).Concat(corpus.Take(first % corpus.Count));

    /// <summary>Utterances with a gap after each, as PCM; stops before the stream would pass <paramref name="seconds"/> (at least one).</summary>
    private static StreamPlan Plan(IEnumerable<Utterance> utterances, double? seconds = null)
    {
        var samples = new List<float>();
        var spans = new List<(double Start, double End)>();
        foreach (var utterance in utterances)
        {
            var length = (utterance.Samples.Length / 16_000.0) + GapSeconds;
            if (spans.Count > 0 && seconds is { } limit && (samples.Count / 16_000.0) + length > limit)
            {
                break;
            }

            var start = samples.Count / 16_000.0;
            samples.AddRange(utterance.Samples);
            spans.Add((start, samples.Count / 16_000.0));
            samples.AddRange(new float[(int)(GapSeconds * 16_000)]);
        }

        return new StreamPlan(Pcm16(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(samples)), samples.Count / 16_000.0, spans);
    }

    /// <summary>The <c>session.update</c> every bench stream sends: pcm_s16le mono at 16 kHz, English.</summary>
    public static object Session { get; } = new { input_audio_format = new { encoding = "pcm_s16le", sample_rate = 16_000, channels = 1 }, language = "en" };

    /// <summary>Samples as the stream's pcm_s16le.</summary>
    public static byte[] Pcm16(ReadOnlySpan<float> samples)
    {
        var pcm = new byte[samples.Length * 2];
        for (var i = 0; i < samples.Length; i++)
        {
            BinaryPrimitives.WriteInt16LittleEndian(pcm.AsSpan(i * 2), (short)Math.Clamp(MathF.Round(samples[i] * 32768f), short.MinValue, short.MaxValue));
        }

        return pcm;
    }

    private static async Task<StreamResult> RunStreamAsync(Uri server, string key, StreamPlan plan, double speed)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds((plan.Seconds / Math.Max(speed, 1)) + 300));
        await using var client = await StreamClient.ConnectAsync(server, key, timeout.Token);
        var events = new List<ReceivedStreamEvent>();
        var reading = Task.Run(async () =>
        {
            await foreach (var received in client.ReadEventsAsync(timeout.Token))
            {
                events.Add(received);
            }
        });
        var sendStart = client.Elapsed;
        try
        {
            await client.UpdateSessionAsync(Session, timeout.Token);
            sendStart = client.Elapsed;
            await client.StreamAsync(plan.Pcm, BytesPerSecond, speed, timeout.Token);
            await client.CloseOutputAsync(timeout.Token);
        }
        catch (System.Net.WebSockets.WebSocketException) when (client.State != System.Net.WebSockets.WebSocketState.Open)
        {
            // Refused (1013) or ended by the server; counted below.
        }

        await reading;
        var completed = events.Where(e => e.Type == "transcript.completed")
            .Select(e => (Start: e.Body.GetProperty("start").GetDouble(), End: e.Body.GetProperty("end").GetDouble(), e.At))
            .ToList();
        var latencies = new List<double>();
        var missed = 0;
        foreach (var (start, end) in plan.Utterances)
        {
            // The utterance's transcript is complete when the last item overlapping it has arrived (the VAD may
            // split an utterance at a pause).
            var covering = completed.Where(c => c.Start < end && c.End > start).ToList();
            if (covering.Count == 0)
            {
                missed++;
                continue;
            }

            var endOfSpeech = sendStart + TimeSpan.FromSeconds(end / (speed > 0 ? speed : double.PositiveInfinity));
            latencies.Add((covering.Max(c => c.At) - endOfSpeech).TotalSeconds);
        }

        var refused = client.CloseStatus is { } status && (int)status == 1013;
        return new StreamResult(latencies, missed, events.Count(e => e.Type == "error"), refused);
    }

    private sealed record StreamPlan(byte[] Pcm, double Seconds, IReadOnlyList<(double Start, double End)> Utterances);

    private sealed record StreamResult(IReadOnlyList<double> Latencies, int Missed, int Errors, bool Refused);
}
