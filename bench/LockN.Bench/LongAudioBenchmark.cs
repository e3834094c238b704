using System.Diagnostics;

namespace LockN.Bench;

/// <summary>
/// Memory against audio length: a `lockn serve` process (alone, so its memory is its own) given hour-long inputs that
/// are small on the wire — a 59-minute 1 kHz 8-bit WAV (3.5 MB) to classification, once and four at once, and a
/// one-hour Opus voice memo (jfk.wav looped) to transcription. Reports the peak rise of the server's and the Whisper
/// worker's resident memory over the idle baseline, and where they are a minute after.
/// </summary>
internal static class LongAudioBenchmark
{
    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options)
    {
        var scratch = Directory.CreateTempSubdirectory("lockn-long-audio-");
        try
        {
            var wav = Path.Combine(scratch.FullName, "long-1khz-8bit.wav");
            var opus = Path.Combine(scratch.FullName, "memo.opus");
            Ffmpeg("-f lavfi -i anoisesrc=d=3540:c=pink:r=1000:a=0.3 -ac 1 -ar 1000 -c:a pcm_u8", wav);
            Ffmpeg($"-stream_loop 330 -i {Path.Combine(options.SharedDirectory, "audio", "speech", "jfk", "jfk.wav")} -t 3600 -ac 1 -c:a libopus -b:a 20k", opus);

            var rows = new List<string>();
            await using (var server = await ServeProcess.StartAsync(options, Path.Combine(scratch.FullName, "data"), new Dictionary<string, string?> { ["Classification:LoadAtStart"] = "true" }))
            {
                rows.Add(await MeasureAsync(server, "classification, 59 min WAV (3.5 MB)", "/v1/audio/classifications", wav, 1, []));
                rows.Add(await MeasureAsync(server, "classification, same, four at once", "/v1/audio/classifications", wav, 4, []));
                rows.Add(await MeasureAsync(server, "transcription, 1 h Opus (9 MB)", "/v1/audio/transcriptions", opus, 1, [("model", "whisper-1")]));
            }

            return
            [
                "### Memory against audio length",
                "",
                $"`lockn serve` as its own process, {options.ModelId}, on its defaults. Rise of resident memory (VmRSS sampled every 100 ms) over the idle baseline measured just before; \"after\" is a minute after the last answer.",
                "",
                "| input | time | server: baseline → peak (rise) | a minute after | Whisper worker: baseline → peak | a minute after |",
                "|---|---|---|---|---|---|",
                .. rows,
            ];
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    private static void Ffmpeg(string arguments, string output)
    {
        var startInfo = new ProcessStartInfo("ffmpeg", $"-loglevel error -y {arguments} {output}") { RedirectStandardError = true };
        using var process = Process.Start(startInfo)!;
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ffmpeg failed: {errors}");
        }
    }

    private static async Task<string> MeasureAsync(ServeProcess server, string what, string path, string file, int clients, (string Name, string Value)[] fields)
    {
        var bytes = await File.ReadAllBytesAsync(file);
        var worker = ProcessMemory.ChildrenOf(server.Pid).FirstOrDefault();
        var serverBefore = Resident(server.Pid);
        var workerBefore = worker == 0 ? 0 : Resident(worker);
        long serverPeak = serverBefore, workerPeak = workerBefore;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                serverPeak = Math.Max(serverPeak, Resident(server.Pid));
                workerPeak = worker == 0 ? 0 : Math.Max(workerPeak, Resident(worker));
                await Task.Delay(100);
            }
        });

        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            using var form = new MultipartFormDataContent { { new ByteArrayContent(bytes), "file", Path.GetFileName(file) } };
            foreach (var (name, value) in fields)
            {
                form.Add(new StringContent(value), name);
            }

            using var response = await server.Client.PostAsync(path, form);
            var body = await response.Content.ReadAsStringAsync();
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {body}");
            }
        }));
        var elapsed = Stopwatch.GetElapsedTime(started);
        await stop.CancelAsync();
        await sampler;
        await Task.Delay(TimeSpan.FromMinutes(1));
        var serverAfter = Resident(server.Pid);
        var workerAfter = worker == 0 ? 0 : Resident(worker);
        return $"| {what} | {elapsed.TotalSeconds:0} s | {Stats.Mib(serverBefore)} → {Stats.Mib(serverPeak)} (+{Stats.Mib(serverPeak - serverBefore)}) | {Stats.Mib(serverAfter)} ({Stats.Change(serverAfter, serverBefore)}) " +
               $"| {Stats.Mib(workerBefore)} → {Stats.Mib(workerPeak)} | {Stats.Mib(workerAfter)} ({Stats.Change(workerAfter, workerBefore)}) |";
    }

    private static long Resident(int pid) => ProcessMemory.ResidentBytes(pid);
}
