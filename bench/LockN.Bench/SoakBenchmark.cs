using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LockN.Audio;
using LockN.Classification;
using LockN.Hosting;
using LockN.Storage;
using LockN.Streaming;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LockN.Bench;

/// <summary>
/// Every kind of request at once for a long time: one `lockn serve` process with a managed llama-server and YAMNet
/// loaded at start; C clients each loop a random mix of transcriptions (jfk.wav), classifications (ESC-50 clips),
/// streams of jfk.wav at 4× real time and chat completions (plain and streamed); half the clients leave every
/// request after a random 0–2 s. Afterwards: stuck slots or queues, memory at the first minute against the end,
/// ffmpeg left behind, and the usage ledger against what the clients sent.
/// </summary>
internal static class SoakBenchmark
{
    private const string ChatModel = "llama";
    private const string Completed = "2xx";
    private const string Abandoned = "abandoned by the client";
    private const string TimedOut = "no answer in 2 min";
    private const double StreamSpeed = 4;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromMinutes(2);

    /// <summary>Drawn with equal chances; a transcription is then WAV or Opus, a chat plain or streamed, half each.</summary>
    private static readonly Kind[] MixedKinds = [Kind.Transcription, Kind.Classification, Kind.Stream, Kind.Chat];

    private enum Kind
    {
        Transcription,
        TranscriptionOpus,
        Classification,
        Stream,
        Chat,
        ChatStreamed,
    }

    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options)
    {
        var duration = TimeSpan.FromMinutes(options.Number("--minutes", 30));
        var clients = (int)options.Number("--clients", 8);
        var jfkPath = Path.Combine(options.SharedDirectory, "audio", "speech", "jfk", "jfk.wav");
        var jfk = await File.ReadAllBytesAsync(jfkPath);
        var decoded = await new AudioDecoder(Options.Create(new AudioOptions()), NullLogger<AudioDecoder>.Instance).DecodeAsync(new MemoryStream(jfk), CancellationToken.None);
        var jfkPcm = StreamingBenchmark.Pcm16(decoded.Audio!.Samples.ToArray());
        var jfkOpus = await OpusAsync(jfkPath); // WAV is read in-process: half the transcriptions are Opus so that ffmpeg runs, and is left
        var clips = Directory.GetFiles(Path.Combine(options.SharedDirectory, "audio", "esc50"), "*.wav").Order(StringComparer.Ordinal)
            .Select(path => (Name: Path.GetFileName(path), Bytes: File.ReadAllBytes(path))).ToArray();

        var settings = new Dictionary<string, string?>
        {
            ["Classification:LoadAtStart"] = "true",
            ["Keys:DefaultRequestsPerMinute"] = "1000000",
            ["Streaming:MaxStreamsPerKey"] = Math.Max(8, clients).ToString(CultureInfo.InvariantCulture),
            ["Dispatch:LlamaServerPath"] = Path.Combine(options.SharedDirectory, "llama", "bin", "llama-server"),
            ["Dispatch:ManagedServers:0:Name"] = ChatModel,
            ["Dispatch:ManagedServers:0:Model"] = "tiny-random-llama.gguf",
            ["Dispatch:ManagedServers:0:Models:0"] = ChatModel,
            ["Dispatch:ManagedServers:0:Start"] = "always",
            ["Dispatch:ManagedServers:0:ContextSize"] = "4096",
            ["Dispatch:ManagedServers:0:Threads"] = "1",
        };
        foreach (var (key, value) in options.Settings)
        {
            settings[key] = value;
        }

        var scratch = Directory.CreateTempSubdirectory("lockn-soak-");
        try
        {
            var models = Path.Combine(options.SharedDirectory, "models") + ";" + Path.Combine(options.SharedDirectory, "llama", "models");
            await using var server = await ServeProcess.StartAsync(options, Path.Combine(scratch.FullName, "data"), settings, models);
            await WaitForBackendAsync(server.Client, ChatModel);

            var outcomes = new ConcurrentDictionary<(Kind Kind, string Outcome), int>();
            using var sampler = new MemorySampler(server.Pid);
            var load = Stopwatch.StartNew();
            Console.Error.WriteLine(FormattableString.Invariant($"soak: {clients} clients for {duration.TotalMinutes:0.#} min"));
            await Task.WhenAll(Enumerable.Range(0, clients).Select(client => Task.Run(async () =>
            {
                var random = new Random(14 + client);
                var leaves = client % 2 == 1;
                while (load.Elapsed < duration)
                {
                    var kind = MixedKinds[random.Next(MixedKinds.Length)];
                    if (kind == Kind.Chat && random.Next(2) == 0)
                    {
                        kind = Kind.ChatStreamed;
                    }
                    else if (kind == Kind.Transcription && random.Next(2) == 0)
                    {
                        kind = Kind.TranscriptionOpus;
                    }

                    var clip = clips[random.Next(clips.Length)];
                    TimeSpan? leaveAfter = leaves ? TimeSpan.FromMilliseconds(random.Next(0, 2001)) : null;
                    var outcome = kind switch
                    {
                        Kind.Transcription => await HttpAsync(server.Client, () => Upload("/v1/audio/transcriptions", "jfk.wav", jfk, ("model", "whisper-1")), leaveAfter),
                        Kind.TranscriptionOpus => await HttpAsync(server.Client, () => Upload("/v1/audio/transcriptions", "jfk.opus", jfkOpus, ("model", "whisper-1")), leaveAfter),
                        Kind.Classification => await HttpAsync(server.Client, () => Upload("/v1/audio/classifications", clip.Name, clip.Bytes), leaveAfter),
                        Kind.Stream => await StreamAsync(server.BaseAddress, jfkPcm, leaveAfter),
                        _ => await HttpAsync(server.Client, () => Chat(kind == Kind.ChatStreamed), leaveAfter),
                    };
                    outcomes.AddOrUpdate((kind, outcome), 1, (_, n) => n + 1);
                }
            })));
            var loadSeconds = load.Elapsed.TotalSeconds;
            var endOfLoad = sampler.Latest;

            // Quiet: every model's and backend's slots free and queues empty, as /health/ready shows them.
            var quietFor = Stopwatch.StartNew();
            var (quiet, busy) = await ReadBusyAsync(server.Client);
            while (!quiet && quietFor.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(250);
                (quiet, busy) = await ReadBusyAsync(server.Client);
            }

            var quietSeconds = quietFor.Elapsed.TotalSeconds;
            await Task.Delay(2500); // the ledger writer's batch (Usage:FlushIntervalMilliseconds, 1 s)
            var afterQuiet = sampler.Sample();
            await sampler.StopAsync();
            var ffmpegLeft = ProcessMemory.DescendantsOf(server.Pid).Count(pid => ProcessMemory.NameOf(pid) == "ffmpeg");
            var ready = await ReadinessAsync(server.Client);
            var backend = await server.Client.GetFromJsonAsync<JsonElement>($"/admin/backends/{ChatModel}");
            var llamaBusy = await LlamaSlotsProcessingAsync(backend);
            var usage = await server.Client.GetFromJsonAsync<JsonElement>("/admin/usage?group_by=model");
            var rows = await LedgerRowsAsync(Path.Combine(scratch.FullName, "data"));

            var lines = Report(options, clients, duration, loadSeconds, outcomes, sampler, endOfLoad, afterQuiet, quiet, busy, quietSeconds, ffmpegLeft, ready, backend, llamaBusy, usage);
            lines.AddRange(EndpointReport(outcomes, rows));
            return lines;
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    private static List<string> Report(
        BenchOptions options,
        int clients,
        TimeSpan duration,
        double loadSeconds,
        ConcurrentDictionary<(Kind Kind, string Outcome), int> outcomes,
        MemorySampler sampler,
        MemorySample endOfLoad,
        MemorySample afterQuiet,
        bool quiet,
        string busy,
        double quietSeconds,
        int ffmpegLeft,
        JsonElement ready,
        JsonElement backend,
        string llamaBusy,
        JsonElement usage)
    {
        var lines = new List<string>
        {
            "### Soak: every kind of request, half the clients leaving",
            "",
            FormattableString.Invariant($"`lockn serve` as its own process ({options.ModelId}, YAMNet loaded at start, the llama-server of ../shared/llama as managed backend `{ChatModel}` with `-t 1`), ") +
            FormattableString.Invariant($"{clients} clients for {duration.TotalMinutes:0.#} min ({loadSeconds:0} s until the last answer), all with the admin key (Keys:DefaultRequestsPerMinute raised). ") +
            "Each loops a random mix: POST /v1/audio/transcriptions of jfk.wav (whisper-1; half of them as Ogg/Opus, which goes through ffmpeg: WAV is read in-process), POST /v1/audio/classifications of an ESC-50 clip, jfk.wav over /v1/audio/stream " +
            FormattableString.Invariant($"at {StreamSpeed:0}× real time (closed when sent, then read to the server's close), POST /v1/chat/completions (`max_tokens: 16`, plain or streamed). ") +
            $"The odd-numbered half of the clients leave every request after a random 0–2 s (the HTTP request cancelled, the WebSocket aborted). A stream is {Completed} when the server closed it normally.",
            "",
            "| request | sent | " + Completed + " | other answers | " + Abandoned + " | failed or timed out |",
            "|---|---:|---:|---|---:|---|",
        };
        foreach (var kind in Enum.GetValues<Kind>())
        {
            var mine = outcomes.Where(o => o.Key.Kind == kind).ToDictionary(o => o.Key.Outcome, o => o.Value);
            var others = mine.Where(o => Category(o.Key) == OutcomeCategory.OtherAnswer).OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}: {o.Value}");
            var failed = mine.Where(o => Category(o.Key) == OutcomeCategory.Failed).OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}: {o.Value}");
            lines.Add($"| {Describe(kind)} | {mine.Values.Sum()} | {mine.GetValueOrDefault(Completed)} | {Join(others)} | {mine.GetValueOrDefault(Abandoned)} | {Join(failed)} |");
        }

        var total = outcomes.Values.Sum();
        lines.Add($"| **all** | **{total}** | {Sum(outcomes, o => o == Completed)} | {Sum(outcomes, o => Category(o) == OutcomeCategory.OtherAnswer)} | {Sum(outcomes, o => o == Abandoned)} | {Sum(outcomes, o => Category(o) == OutcomeCategory.Failed)} |");

        var atMinute = sampler.AtOrFirst(TimeSpan.FromMinutes(1));
        lines.AddRange(
        [
            "",
            $"Memory (VmRSS, sampled every second; \"at 1 min\" is the sample nearest a minute into the load{(loadSeconds < 60 ? ", or the first: the load was shorter" : "")}; workers are every child but llama-server and ffmpeg, summed):",
            "",
            "| process | at 1 min | end of load | after quiet | change 1 min → end of load | peak | flat within 10 %? |",
            "|---|---:|---:|---:|---:|---:|---|",
            MemoryRow("server", s => s.Server),
            MemoryRow($"Whisper workers ({atMinute.WorkerCount} alive at 1 min, {endOfLoad.WorkerCount} at the end of load; {sampler.WorkerPids.Count} processes over the run)", s => s.Workers),
            MemoryRow("llama-server", s => s.Llama),
            MemoryRow("all", s => s.Server + s.Workers + s.Llama),
            "",
        ]);

        string MemoryRow(string what, Func<MemorySample, long> bytes)
        {
            var first = bytes(atMinute);
            var last = bytes(endOfLoad);
            var flat = first > 0 && Math.Abs(last - first) <= first / 10;
            return $"| {what} | {Stats.Mib(first)} | {Stats.Mib(last)} | {Stats.Mib(bytes(afterQuiet))} | {Stats.Change(last, first)} | {Stats.Mib(sampler.Samples.Max(bytes))} | {(flat ? "yes" : "**no**")} |";
        }

        var backendSlots = backend.GetProperty("slots");
        lines.Add(FormattableString.Invariant($"**Stuck slots: {(quiet ? "none" : "some")}** — {(quiet ? $"every model's and backend's slots free and queues empty {quietSeconds:0.0} s after the last answer" : $"still busy after {quietSeconds:0} s: {busy}")} (/health/ready: {ready.GetProperty("status").GetString()}); ") +
            FormattableString.Invariant($"/admin/backends/{ChatModel}: {backend.GetProperty("state").GetString()}, slots busy {backendSlots.GetProperty("busy").GetInt32()} of {backendSlots.GetProperty("total").GetInt32()}, {backend.GetProperty("process").GetProperty("restarts").GetInt32()} restarts; llama-server's own /slots: {llamaBusy}."));
        lines.Add("");
        lines.Add($"**ffmpeg processes left: {ffmpegLeft}** (at most {sampler.Samples.Max(s => s.Ffmpeg)} seen at once in the samples).");
        lines.Add("");
        lines.AddRange(LedgerReport(outcomes, ready, usage));
        return lines;
    }

    /// <summary>
    /// The ledger (every /v1/ request, recorded when its response is done: a client that left is 499, a stream is its
    /// 101 unless its client left) against the client's count, by model: speech is transcriptions and streams.
    /// </summary>
    private static List<string> LedgerReport(ConcurrentDictionary<(Kind Kind, string Outcome), int> outcomes, JsonElement ready, JsonElement usage)
    {
        // Rows carry the model that served them: Whisper's resolved id, yamnet, and the backend's own id for chat.
        var speechModel = ready.GetProperty("default_model").GetString();
        string Family(string? model) => model is null ? "(no model)" : model == speechModel ? $"{model} (transcriptions and streams)" : model == YamnetModel.Id ? $"{model} (classifications)" : $"{model} (chat)";
        var ledger = usage.GetProperty("data").EnumerateArray()
            .Select(g => (Family: Family(g.GetProperty("group").GetString()), Rows: g.GetProperty("requests").GetInt64(), Errors: g.GetProperty("errors").GetInt64()))
            .ToList();
        var chatFamily = ledger.Select(l => l.Family).FirstOrDefault(f => f.EndsWith("(chat)", StringComparison.Ordinal)) ?? Family(ChatModel);
        string FamilyOf(Kind kind) => kind switch
        {
            Kind.Transcription or Kind.TranscriptionOpus or Kind.Stream => Family(speechModel),
            Kind.Classification => Family(YamnetModel.Id),
            _ => chatFamily,
        };

        var families = ledger.Select(l => l.Family).Concat(Enum.GetValues<Kind>().Select(FamilyOf)).Distinct().ToList();

        var lines = new List<string>
        {
            "Usage ledger (GET /admin/usage?group_by=model, 2.5 s after quiet) against the clients: the ledger has a row for every /v1/ request that reached an endpoint, " +
            "refusals and errors included; a request its client left is a row with 499 if the server saw it go, or with the answer's status if the answer was done first. " +
            "A stream's row has its 101 (< 400) unless the server saw its client go. The clients cannot know whether a request they left or that failed had reached the server.",
            "",
            "| model | client: sent | ledger rows | difference | client: answered < 400 | ledger rows < 400 | client: answered ≥ 400 + left + failed | ledger rows ≥ 400 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        };
        long allSent = 0, allRows = 0;
        foreach (var family in families)
        {
            var mine = outcomes.Where(o => FamilyOf(o.Key.Kind) == family).ToList();
            var sent = mine.Sum(o => o.Value);
            var below400 = mine.Where(o => IsBelow400(o.Key.Outcome)).Sum(o => o.Value);
            var rows = ledger.Where(l => l.Family == family).Sum(l => l.Rows);
            var errors = ledger.Where(l => l.Family == family).Sum(l => l.Errors);
            allSent += sent;
            allRows += rows;
            lines.Add($"| {family} | {sent} | {rows} | {rows - sent:+0;-0;0} | {below400} | {rows - errors} | {sent - below400} | {errors} |");
        }

        lines.Add("");
        lines.Add($"**Ledger rows {allRows} against {allSent} requests sent: difference {allRows - allSent:+0;-0;0}.**");
        return lines;
    }

    /// <summary>
    /// The same ledger by endpoint and status (from the server's database: /admin/usage groups by model, day or key
    /// only), so that each kind of request is compared with its own rows: 2xx with 2xx, left with 499.
    /// </summary>
    private static List<string> EndpointReport(ConcurrentDictionary<(Kind Kind, string Outcome), int> outcomes, Dictionary<(string Endpoint, int Status), int> rows)
    {
        static string EndpointOf(Kind kind) => kind switch
        {
            Kind.Transcription or Kind.TranscriptionOpus => "/v1/audio/transcriptions",
            Kind.Classification => "/v1/audio/classifications",
            Kind.Stream => "/v1/audio/stream",
            _ => "/v1/chat/completions",
        };

        var lines = new List<string>
        {
            "",
            "By endpoint and status (the rows themselves, read from the data directory's database after the query above). A stream's answer is its 101:",
            "",
            "| endpoint | client: sent | ledger rows | client: 2xx | ledger: 2xx or 101 | client: left | ledger: 499 | client: other answers and failures | ledger: other statuses |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|",
        };
        var endpoints = Enum.GetValues<Kind>().Select(EndpointOf).Concat(rows.Keys.Select(r => r.Endpoint)).Distinct(StringComparer.Ordinal).ToList();
        foreach (var endpoint in endpoints)
        {
            var mine = outcomes.Where(o => EndpointOf(o.Key.Kind) == endpoint).ToList();
            var ledger = rows.Where(r => r.Key.Endpoint == endpoint).ToList();
            var clientOther = mine.Where(o => o.Key.Outcome is not Completed and not Abandoned).GroupBy(o => o.Key.Outcome).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}: {g.Sum(o => o.Value)}");
            var ledgerOther = ledger.Where(r => r.Key.Status is not (>= 200 and < 300) and not 101 and not UsageRecordingClientClosed).OrderBy(r => r.Key.Status).Select(r => $"{r.Key.Status}: {r.Value}");
            lines.Add($"| {endpoint} | {mine.Sum(o => o.Value)} | {ledger.Sum(r => r.Value)} | {mine.Where(o => o.Key.Outcome == Completed).Sum(o => o.Value)} | " +
                $"{ledger.Where(r => r.Key.Status is (>= 200 and < 300) or 101).Sum(r => r.Value)} | {mine.Where(o => o.Key.Outcome == Abandoned).Sum(o => o.Value)} | " +
                $"{ledger.Where(r => r.Key.Status == UsageRecordingClientClosed).Sum(r => r.Value)} | {Join(clientOther)} | {Join(ledgerOther)} |");
        }

        return lines;
    }

    private const int UsageRecordingClientClosed = Usage.UsageRecording.ClientClosedRequest;

    /// <summary>The ledger's rows counted by endpoint (the route pattern) and status.</summary>
    private static async Task<Dictionary<(string Endpoint, int Status), int>> LedgerRowsAsync(string dataDirectory)
    {
        var database = LockNDatabase.FromConfiguration(LockNConfiguration.Build(new Dictionary<string, string?> { [LockNConfiguration.DataKey] = dataDirectory, [LockNDatabase.ConfigurationKey] = "" }));
        await using var db = database.Open();
        var counts = await db.Usage.AsNoTracking()
            .GroupBy(u => new { u.Endpoint, u.StatusCode })
            .Select(g => new { g.Key.Endpoint, g.Key.StatusCode, Rows = g.Count() })
            .ToListAsync();
        return counts.ToDictionary(c => (c.Endpoint, c.StatusCode), c => c.Rows);
    }

    private static bool IsBelow400(string outcome) =>
        outcome == Completed || outcome.StartsWith("closed ", StringComparison.Ordinal) || (outcome.StartsWith("HTTP ", StringComparison.Ordinal) && int.Parse(outcome[5..], CultureInfo.InvariantCulture) < 400);

    private enum OutcomeCategory
    {
        Completed,
        OtherAnswer,
        Abandoned,
        Failed,
    }

    private static OutcomeCategory Category(string outcome) =>
        outcome == Completed ? OutcomeCategory.Completed
        : outcome == Abandoned ? OutcomeCategory.Abandoned
        : outcome.StartsWith("HTTP ", StringComparison.Ordinal) || outcome.StartsWith("closed ", StringComparison.Ordinal) ? OutcomeCategory.OtherAnswer
        : OutcomeCategory.Failed;

    private static int Sum(ConcurrentDictionary<(Kind Kind, string Outcome), int> outcomes, Func<string, bool> which) =>
        outcomes.Where(o => which(o.Key.Outcome)).Sum(o => o.Value);

    private static string Join(IEnumerable<string> parts) => string.Join(", ", parts) is { Length: > 0 } text ? text : "—";

    private static string Describe(Kind kind) => kind switch
    {
        Kind.Transcription => "transcription (jfk.wav)",
        Kind.TranscriptionOpus => "transcription (jfk.wav as Ogg/Opus: through ffmpeg)",
        Kind.Classification => "classification (ESC-50 clip)",
        Kind.Stream => FormattableString.Invariant($"stream (jfk.wav at {StreamSpeed:0}×)"),
        Kind.Chat => "chat, plain",
        _ => "chat, streamed",
    };

    private static HttpRequestMessage Upload(string path, string name, byte[] file, params (string Name, string Value)[] fields)
    {
        var form = new MultipartFormDataContent { { new ByteArrayContent(file), "file", name } };
        foreach (var (field, value) in fields)
        {
            form.Add(new StringContent(value), field);
        }

        return new HttpRequestMessage(HttpMethod.Post, path) { Content = form };
    }

    private static async Task<byte[]> OpusAsync(string wav)
    {
        var opus = Path.Combine(Path.GetTempPath(), $"lockn-soak-{Guid.NewGuid():N}.opus");
        try
        {
            var startInfo = new ProcessStartInfo("ffmpeg") { RedirectStandardError = true };
            foreach (var arg in new[] { "-loglevel", "error", "-y", "-i", wav, "-ac", "1", "-c:a", "libopus", "-b:a", "24k", opus })
            {
                startInfo.ArgumentList.Add(arg);
            }

            using var process = Process.Start(startInfo)!;
            var errors = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            return process.ExitCode == 0 ? await File.ReadAllBytesAsync(opus) : throw new InvalidOperationException($"ffmpeg failed: {errors}");
        }
        finally
        {
            File.Delete(opus);
        }
    }

    private static HttpRequestMessage Chat(bool stream)
    {
        var body = new JsonObject
        {
            ["model"] = ChatModel,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Say something short." }),
            ["max_tokens"] = 16,
            ["stream"] = stream,
        };
        return new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
    }

    /// <summary>One request read to its end (a streamed answer to its last event); left after <paramref name="leaveAfter"/> if given.</summary>
    private static async Task<string> HttpAsync(HttpClient client, Func<HttpRequestMessage> build, TimeSpan? leaveAfter)
    {
        using var cancel = new CancellationTokenSource(leaveAfter ?? RequestTimeout);
        try
        {
            using var request = build();
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            await using var body = await response.Content.ReadAsStreamAsync(cancel.Token);
            await body.CopyToAsync(Stream.Null, cancel.Token);
            return response.IsSuccessStatusCode ? Completed : $"HTTP {(int)response.StatusCode}";
        }
        catch (Exception) when (cancel.IsCancellationRequested)
        {
            return leaveAfter is null ? TimedOut : Abandoned;
        }
        catch (HttpRequestException ex)
        {
            return $"failed ({ex.HttpRequestError})";
        }
        catch (IOException)
        {
            return "failed (connection)";
        }
    }

    /// <summary>jfk.wav over /v1/audio/stream, closed when sent and read to the server's close; aborted after <paramref name="leaveAfter"/> if given.</summary>
    private static async Task<string> StreamAsync(Uri server, byte[] pcm, TimeSpan? leaveAfter)
    {
        using var cancel = new CancellationTokenSource(leaveAfter ?? RequestTimeout);
        StreamClient client;
        try
        {
            client = await StreamClient.ConnectAsync(server, BenchServer.AdminKey, cancel.Token);
        }
        catch (Exception) when (cancel.IsCancellationRequested)
        {
            return leaveAfter is null ? TimedOut : Abandoned;
        }
        catch (WebSocketException ex)
        {
            return $"failed to connect ({ex.WebSocketErrorCode})";
        }

        await using (client)
        {
            using var abort = cancel.Token.Register(client.Abort);
            var reading = Task.Run(async () =>
            {
                await foreach (var _ in client.ReadEventsAsync(CancellationToken.None))
                {
                }
            });
            try
            {
                await client.UpdateSessionAsync(StreamingBenchmark.Session, cancel.Token);
                await client.StreamAsync(pcm, StreamingBenchmark.BytesPerSecond, StreamSpeed, cancel.Token);
                await client.CloseOutputAsync(cancel.Token);
                await reading.WaitAsync(cancel.Token);
            }
            catch (Exception) when (cancel.IsCancellationRequested)
            {
                return leaveAfter is null ? TimedOut : Abandoned;
            }
            catch (Exception ex) when (ex is WebSocketException or IOException)
            {
                // The server closed first (a refusal is 1013): its close status says so below.
            }
            finally
            {
                if (client.State != WebSocketState.Closed)
                {
                    client.Abort(); // so that the reading ends
                }

                await reading.ContinueWith(_ => { }, TaskScheduler.Default);
            }

            return client.CloseStatus switch
            {
                WebSocketCloseStatus.NormalClosure => Completed,
                { } status => $"closed {(int)status}",
                null => "failed (dropped without a close)",
            };
        }
    }

    private static async Task WaitForBackendAsync(HttpClient client, string name)
    {
        var waited = Stopwatch.StartNew();
        while ((await client.GetFromJsonAsync<JsonElement>($"/admin/backends/{name}")).GetProperty("state").GetString() != "ready")
        {
            if (waited.Elapsed > TimeSpan.FromMinutes(1))
            {
                throw new InvalidOperationException($"Managed backend '{name}' was not ready after a minute.");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Whether every model and backend in /health/ready has no busy slot and an empty queue; if not, which.</summary>
    private static async Task<(bool Quiet, string Busy)> ReadBusyAsync(HttpClient client)
    {
        var report = await ReadinessAsync(client);
        var busy = report.GetProperty("models").EnumerateArray().Select(m => (Name: m.GetProperty("id").GetString(), Report: m))
            .Concat(report.GetProperty("backends").EnumerateArray().Select(b => (Name: b.GetProperty("name").GetString(), Report: b)))
            .Select(x => (x.Name, Busy: x.Report.GetProperty("slots").GetProperty("busy").GetInt32(), Queued: x.Report.GetProperty("queue").GetProperty("depth").GetInt32()))
            .Where(x => x.Busy != 0 || x.Queued != 0)
            .Select(x => $"{x.Name}: {x.Busy} busy, {x.Queued} queued")
            .ToList();
        return (busy.Count == 0, string.Join("; ", busy));
    }

    /// <summary>/health/ready's body, whatever its status (503 while no worker of the default model is warm).</summary>
    private static async Task<JsonElement> ReadinessAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/health/ready");
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    /// <summary>llama-server's own view (its /slots, on its port): how many slots are processing.</summary>
    private static async Task<string> LlamaSlotsProcessingAsync(JsonElement backend)
    {
        if (!backend.GetProperty("process").TryGetProperty("port", out var port) || port.ValueKind != JsonValueKind.Number)
        {
            return "not running";
        }

        using var direct = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port.GetInt32()}"), Timeout = TimeSpan.FromSeconds(10) };
        var slots = await direct.GetFromJsonAsync<JsonElement>("/slots");
        return $"{slots.EnumerateArray().Count(s => s.GetProperty("is_processing").GetBoolean())} of {slots.GetArrayLength()} processing";
    }

    private sealed record MemorySample(TimeSpan At, long Server, long Workers, int WorkerCount, long Llama, int Ffmpeg);

    /// <summary>The server's and its children's resident memory every second, from /proc.</summary>
    private sealed class MemorySampler : IDisposable
    {
        private readonly int server;
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private readonly CancellationTokenSource stop = new();
        private readonly Task loop;
        private readonly List<MemorySample> samples = [];

        public MemorySampler(int server)
        {
            this.server = server;
            loop = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    Sample();
                    await Task.Delay(1000, stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                }
            });
        }

        public HashSet<int> WorkerPids { get; } = [];

        public IReadOnlyList<MemorySample> Samples
        {
            get
            {
                lock (samples)
                {
                    return [.. samples];
                }
            }
        }

        public MemorySample Latest => Samples[^1];

        public MemorySample AtOrFirst(TimeSpan at) => Samples.MinBy(s => (s.At - at).Duration())!;

        public MemorySample Sample()
        {
            long workers = 0, llama = 0;
            int ffmpeg = 0, workerCount = 0;
            foreach (var pid in ProcessMemory.DescendantsOf(server))
            {
                switch (ProcessMemory.NameOf(pid))
                {
                    case null:
                        break;
                    case "llama-server":
                        llama += ProcessMemory.ResidentBytes(pid);
                        break;
                    case "ffmpeg":
                        ffmpeg++;
                        break;
                    default:
                        workers += ProcessMemory.ResidentBytes(pid);
                        workerCount++;
                        lock (samples)
                        {
                            WorkerPids.Add(pid);
                        }

                        break;
                }
            }

            var sample = new MemorySample(clock.Elapsed, ProcessMemory.ResidentBytes(server), workers, workerCount, llama, ffmpeg);
            lock (samples)
            {
                samples.Add(sample);
            }

            return sample;
        }

        public async Task StopAsync()
        {
            await stop.CancelAsync();
            await loop;
        }

        public void Dispose() => stop.Dispose();
    }
}
