using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace LockN.Bench;

/// <summary>
/// LockN side by side with whisper.cpp's own whisper-server (../shared/whisper-native/bin) on the same model file,
/// the same threads and the same audio: each runs as its own process, requests alternate between them utterance by
/// utterance, and the memory of every process (LockN's server and its workers) is read from /proc.
/// LockN runs twice: on the native runtime (Transcription:NativeRuntimePath = whisper-native/lib) and on
/// Whisper.net's packaged runtime, both with flash attention.
/// </summary>
internal static class WhisperServerBenchmark
{
    private const int Clients = 4;

    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options, SpeechCorpus corpus)
    {
        var lines = new List<string>
        {
            "### LockN beside whisper-server (same model, same threads, requests alternating)",
            "",
            $"Threads: {options.Threads} for every server (Transcription:ThreadsPerSlot, whisper-server -t); LockN with 1 slot, no spare worker and its workers at normal priority (Transcription:WorkerPriority), as whisper-server runs; {options.Passes} pass(es) over the corpus; throughput with {Clients} clients sharing one pass.",
            "",
        };
        var models = options.ModelsForSideBySide;
        foreach (var modelId in models)
        {
            lines.AddRange(await RunModelAsync(options, corpus, modelId));
            lines.Add("");
        }

        return lines;
    }

    private static async Task<IEnumerable<string>> RunModelAsync(BenchOptions options, SpeechCorpus corpus, string modelId)
    {
        var modelPath = Transcription.WhisperModelCatalog.Scan(Models.ModelDirectories.Parse(options.ModelsDirectory)).Single(m => m.Id == modelId).Path;
        var native = Path.Combine(options.SharedDirectory, "whisper-native");
        await using var reference = await ServerProcess.StartWhisperServerAsync(Path.Combine(native, "bin", "whisper-server"), modelPath, options.Threads);
        await using var lockn = await ServerProcess.StartLockNAsync(options, modelId, options.Threads, Path.Combine(native, "lib"));
        await using var packaged = await ServerProcess.StartLockNAsync(options, modelId, options.Threads, nativeRuntimePath: null);
        ServerProcess[] servers = [reference, lockn, packaged];
        var idle = servers.Select(s => s.ResidentBytes()).ToArray();

        foreach (var server in servers)
        {
            await server.TranscribeAsync(corpus[0], CancellationToken.None); // first-use costs outside the measurement
        }

        // Real-time factor: one client, each utterance sent to every server in turn, the order rotating.
        var busy = new double[servers.Length];
        var index = 0;
        for (var pass = 0; pass < options.Passes; pass++)
        {
            foreach (var utterance in corpus)
            {
                for (var k = 0; k < servers.Length; k++)
                {
                    var s = (index + k) % servers.Length;
                    var started = Stopwatch.GetTimestamp();
                    await servers[s].TranscribeAsync(utterance, CancellationToken.None);
                    busy[s] += Stopwatch.GetElapsedTime(started).TotalSeconds;
                }

                index++;
            }

            Console.Error.WriteLine($"{modelId} pass {pass + 1}: " + string.Join(", ", servers.Select((s, i) => $"{s.Name} {busy[i]:0.0} s")));
        }

        var audio = corpus.TotalSeconds * options.Passes;
        var rtf = busy.Select(b => b / audio).ToArray();

        // Throughput: four clients share one pass over the corpus, one server at a time.
        var throughput = new double[servers.Length];
        foreach (var s in new[] { 0, 1, 2 })
        {
            var work = new ConcurrentQueue<Utterance>(corpus);
            var started = Stopwatch.GetTimestamp();
            await Task.WhenAll(Enumerable.Range(0, Clients).Select(async _ =>
            {
                while (work.TryDequeue(out var utterance))
                {
                    await servers[s].TranscribeAsync(utterance, CancellationToken.None);
                }
            }));
            throughput[s] = corpus.TotalSeconds / Stopwatch.GetElapsedTime(started).TotalSeconds;
            Console.Error.WriteLine($"{modelId} {servers[s].Name}: {throughput[s]:0.00} audio s/s with {Clients} clients");
        }

        var settled = servers.Select(s => s.ResidentBytes()).ToArray();

        // The incident, for speech: a client sends ten minutes of audio and leaves after a second; how long does the next request take?
        var longAudio = TenMinutesOf(corpus);
        var afterAbandoned = new double[servers.Length];
        foreach (var s in new[] { 0, 1 })
        {
            using (var leave = new CancellationTokenSource(TimeSpan.FromSeconds(1)))
            {
                try
                {
                    await servers[s].TranscribeAsync(longAudio, leave.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }

            var started = Stopwatch.GetTimestamp();
            await servers[s].TranscribeAsync(corpus[0], CancellationToken.None);
            afterAbandoned[s] = Stopwatch.GetElapsedTime(started).TotalSeconds;
            Console.Error.WriteLine($"{modelId} {servers[s].Name}: next request {afterAbandoned[s]:0.00} s after an abandoned 10-minute one");
        }

        var after = servers.Select(s => s.ResidentBytes()).ToArray();
        string Ratio(double a, double b) => (a / b).ToString("0.000", CultureInfo.InvariantCulture);
        var lines = new List<string>
        {
            $"#### {modelId} ({corpus.Count} utterances, {corpus.TotalSeconds:0} s of audio)",
            "",
            "| server | RTF (1 client) | RTF ÷ whisper-server | audio s/s, 4 clients | ÷ whisper-server | RSS idle after start | RSS idle after load | PSS idle after load | RSS peak | processes | next request after an abandoned 10-min one | RSS after it |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        };
        for (var s = 0; s < servers.Length; s++)
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {servers[s].Name} | {rtf[s]:0.000} | {Ratio(rtf[s], rtf[0])} | {throughput[s]:0.00} | {Ratio(throughput[s], throughput[0])} | {Stats.Mib(idle[s].Current)} | {Stats.Mib(settled[s].Current)} | {Stats.Mib(settled[s].Proportional)} | {Stats.Mib(after[s].Peak)} | {after[s].Processes} | {(afterAbandoned[s] > 0 ? afterAbandoned[s].ToString("0.00 s", CultureInfo.InvariantCulture) : "—")} | {(afterAbandoned[s] > 0 ? Stats.Mib(after[s].Current) : "—")} |"));
        }

        lines.Add("");
        lines.Add(string.Create(CultureInfo.InvariantCulture,
            $"LockN (native) ÷ whisper-server: RTF {Ratio(rtf[1], rtf[0])}, throughput {Ratio(throughput[1], throughput[0])}, RSS idle after start {Ratio(idle[1].Current, idle[0].Current)}, RSS idle after load {Ratio(settled[1].Current, settled[0].Current)}, PSS idle after load {Ratio(settled[1].Proportional, settled[0].Proportional)}, RSS peak {Ratio(after[1].Peak, after[0].Peak)}; next request after an abandoned 10-minute one {Ratio(afterAbandoned[1], afterAbandoned[0])}."));
        return lines;
    }

    /// <summary>The corpus utterances end to end until ten minutes: one 16 kHz 16-bit WAV (19 MB, under the upload limit).</summary>
    private static Utterance TenMinutesOf(SpeechCorpus corpus)
    {
        const int rate = 16000;
        var samples = new List<float>(rate * 600);
        while (samples.Count < rate * 600)
        {
            foreach (var utterance in corpus)
            {
                samples.AddRange(utterance.Samples);
            }
        }

        var pcm = samples.Take(rate * 600).ToArray();
        using var wav = new MemoryStream();
        using (var writer = new BinaryWriter(wav, System.Text.Encoding.ASCII, leaveOpen: true))
        {
            writer.Write("RIFF"u8);
            writer.Write(36 + (pcm.Length * 2));
            writer.Write("WAVEfmt "u8);
            writer.Write(16);
            writer.Write((short)1);
            writer.Write((short)1);
            writer.Write(rate);
            writer.Write(rate * 2);
            writer.Write((short)2);
            writer.Write((short)16);
            writer.Write("data"u8);
            writer.Write(pcm.Length * 2);
            foreach (var sample in pcm)
            {
                writer.Write((short)Math.Clamp(sample * 32767f, -32768f, 32767f));
            }
        }

        return new Utterance("ten-minutes", "ten-minutes.wav", wav.ToArray(), pcm, 600);
    }

    /// <summary>A transcription server in its own process, as a deployment runs it.</summary>
    private sealed class ServerProcess : IAsyncDisposable
    {
        private readonly Process process;
        private readonly HttpClient client;
        private readonly Func<Utterance, MultipartFormDataContent> form;
        private readonly string path;
        private readonly string? scratch;

        private ServerProcess(string name, Process process, HttpClient client, string path, Func<Utterance, MultipartFormDataContent> form, string? scratch)
        {
            Name = name;
            this.process = process;
            this.client = client;
            this.path = path;
            this.form = form;
            this.scratch = scratch;
        }

        public string Name { get; }

        public static async Task<ServerProcess> StartWhisperServerAsync(string executable, string modelPath, int threads)
        {
            var port = FreePort();
            var startInfo = new ProcessStartInfo(executable) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in new[] { "-m", modelPath, "-t", threads.ToString(CultureInfo.InvariantCulture), "--host", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture) })
            {
                startInfo.ArgumentList.Add(arg);
            }

            var server = new ServerProcess("whisper-server", Start(startInfo), new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(30) }, "/inference",
                utterance => new MultipartFormDataContent
                {
                    { new ByteArrayContent(utterance.FileBytes), "file", Path.GetFileName(utterance.Path) },
                    { new StringContent("json"), "response_format" },
                    { new StringContent("en"), "language" },
                    { new StringContent("0"), "temperature" },
                }, scratch: null);
            await server.WaitUntilAsync("/");
            return server;
        }

        public static async Task<ServerProcess> StartLockNAsync(BenchOptions options, string modelId, int threads, string? nativeRuntimePath)
        {
            var port = FreePort();
            var data = Path.Combine(Path.GetTempPath(), "lockn-bench-" + Guid.NewGuid().ToString("N"));
            var startInfo = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "lockn")) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in new[] { "serve", "--urls", $"http://127.0.0.1:{port}", "--data", data, "--models", options.ModelsDirectory })
            {
                startInfo.ArgumentList.Add(arg);
            }

            var env = startInfo.Environment;
            env["LOCKN_ADMIN_KEY"] = BenchServer.AdminKey;
            env["LOCKN_Transcription__DefaultModel"] = modelId;
            env["LOCKN_Transcription__PullDefaultModel"] = "false";
            env["LOCKN_Transcription__Slots"] = "1";
            env["LOCKN_Transcription__SpareWorkers"] = "0";
            env["LOCKN_Transcription__ThreadsPerSlot"] = threads.ToString(CultureInfo.InvariantCulture);
            env["LOCKN_Transcription__QueueLength"] = "64";
            env["LOCKN_Transcription__QueueTimeoutSeconds"] = "1800";
            env["LOCKN_Transcription__NativeRuntimePath"] = nativeRuntimePath ?? "";
            // As whisper-server runs: at normal priority (LockN's default, below normal, protects its front door on a
            // shared host; here it would hand the CPU to the other servers' idle OpenMP threads between requests).
            env["LOCKN_Transcription__WorkerPriority"] = "Normal";
            var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(30) };
            client.DefaultRequestHeaders.Authorization = new("Bearer", BenchServer.AdminKey);
            var server = new ServerProcess(nativeRuntimePath is null ? "LockN, packaged runtime" : "LockN, native runtime", Start(startInfo), client, "/v1/audio/transcriptions",
                utterance => new MultipartFormDataContent
                {
                    { new ByteArrayContent(utterance.FileBytes), "file", Path.GetFileName(utterance.Path) },
                    { new StringContent("whisper-1"), "model" },
                    { new StringContent("en"), "language" },
                }, data);
            await server.WaitUntilAsync("/health/ready");
            return server;
        }

        private static Process Start(ProcessStartInfo startInfo)
        {
            var process = Process.Start(startInfo)!;
            // Drain both pipes so a chatty server never blocks on a full pipe.
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return process;
        }

        public async Task TranscribeAsync(Utterance utterance, CancellationToken cancellationToken)
        {
            using var content = form(utterance);
            using var response = await client.PostAsync(path, content, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"{Name}: {(int)response.StatusCode} {body}");
            }
        }

        private async Task WaitUntilAsync(string probe)
        {
            var deadline = Stopwatch.GetTimestamp() + (Stopwatch.Frequency * 120);
            while (Stopwatch.GetTimestamp() < deadline)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"{Name} exited with code {process.ExitCode} while starting.");
                }

                try
                {
                    using var response = await client.GetAsync(probe);
                    if (response.IsSuccessStatusCode)
                    {
                        return;
                    }
                }
                catch (HttpRequestException)
                {
                }

                await Task.Delay(100);
            }

            throw new TimeoutException($"{Name} did not become ready within 120 s.");
        }

        /// <summary>
        /// Memory of the process and all its children (LockN's workers): resident now, the sum of their peaks, and the
        /// proportional set size now (PSS: pages shared between them, such as the .NET runtime's, counted once).
        /// </summary>
        public (long Current, long Peak, long Proportional, int Processes) ResidentBytes()
        {
            long current = 0, peak = 0, proportional = 0;
            var count = 0;
            foreach (var pid in new[] { process.Id }.Concat(ProcessMemory.ChildrenOf(process.Id)))
            {
                var status = ProcessMemory.Read(pid, "status");
                current += status.GetValueOrDefault("VmRSS:");
                peak += status.GetValueOrDefault("VmHWM:");
                proportional += ProcessMemory.Read(pid, "smaps_rollup").GetValueOrDefault("Pss:");
                count++;
            }

            return (current, peak, proportional, count);
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        public async ValueTask DisposeAsync()
        {
            client.Dispose();
            if (!process.HasExited)
            {
                // SIGTERM first: LockN stops its workers on the way out.
                _ = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]);
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                }
            }

            process.Dispose();
            if (scratch is not null && Directory.Exists(scratch))
            {
                Directory.Delete(scratch, recursive: true);
            }
        }
    }
}
