using System.Diagnostics;
using System.Net;

namespace LockN.Tests.Transcription;

/// <summary>Two slots, no spare: one worker process, one loaded model, two lanes.</summary>
public sealed class TwoSlotServerFixture : LockNServerFixture
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Transcription:Slots"] = "2",
        ["Transcription:SpareWorkers"] = "0",
        ["Transcription:ThreadsPerSlot"] = "1",
        ["Transcription:NativeRuntimePath"] = TestAssets.WhisperNativeRuntime,
    };
}

/// <summary>A model's slots are lanes of one worker process: one copy of the model, and no lane pays for another's client.</summary>
[Collection(typeof(SlotDisciplineCollection))]
public sealed class SharedWorkerTests(TwoSlotServerFixture server, ITestOutputHelper output) : IClassFixture<TwoSlotServerFixture>
{
    private static readonly byte[] OneMinute = TestAudio.NoiseWav(60);
    private static readonly byte[] TenMinutes = TestAudio.NoiseWav(600);

    [Fact]
    public async Task Both_slots_run_at_once_in_one_worker_process()
    {
        var first = PostAsync(OneMinute, CancellationToken.None);
        var second = PostAsync(OneMinute, CancellationToken.None);
        await LockNServerFixture.WaitForAsync(async () => (await server.DefaultModelAsync()).GetProperty("slots").GetProperty("busy").GetInt32() == 2);
        var whileBusy = await server.DefaultModelAsync();
        var workerProcesses = WorkerProcessIds();

        using var a = await first;
        using var b = await second;

        Assert.Equal(HttpStatusCode.OK, a.StatusCode);
        Assert.Equal(HttpStatusCode.OK, b.StatusCode);
        Assert.Equal(1, whileBusy.GetProperty("workers").GetInt32());
        Assert.Single(workerProcesses);
    }

    [Fact]
    public async Task A_client_that_leaves_frees_its_slot_at_once_and_the_other_lanes_request_still_succeeds()
    {
        using var leaving = new CancellationTokenSource();
        var abandoned = PostAsync(TenMinutes, leaving.Token);
        var staying = PostAsync(OneMinute, CancellationToken.None);
        await LockNServerFixture.WaitForAsync(async () => (await server.DefaultModelAsync()).GetProperty("slots").GetProperty("busy").GetInt32() == 2);
        await Task.Delay(500);

        var left = Stopwatch.StartNew();
        await leaving.CancelAsync();
        await LockNServerFixture.WaitForAsync(async () => (await server.DefaultModelAsync()).GetProperty("slots").GetProperty("busy").GetInt32() <= 1);
        var freedAfter = left.Elapsed;
        using var stayed = await staying;

        output.WriteLine($"slot freed {freedAfter.TotalMilliseconds:0.0} ms after the client left; the other request: {(int)stayed.StatusCode}");
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        Assert.True(freedAfter < TimeSpan.FromMilliseconds(100), $"slot freed {freedAfter.TotalMilliseconds:0} ms after the client left");
        // The cancelled job ignores its abort for hundreds of ms, so its worker was killed with the other job on it;
        // that job ran again on the replacement.
        Assert.Contains(server.Logs.Lines, line => line.Contains("killed it", StringComparison.Ordinal));
        Assert.Contains(server.Logs.Lines, line => line.Contains("running it again", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, stayed.StatusCode);
    }

    private Task<HttpResponseMessage> PostAsync(byte[] wav, CancellationToken cancellationToken) =>
        server.Client.PostAsync("/v1/audio/transcriptions", TestAudio.Form(wav, "audio.wav", ("model", "whisper-1")), cancellationToken);


    /// <summary>The `lockn worker` processes this test process started (the fixture's server runs in it).</summary>
    private static int[] WorkerProcessIds()
    {
        var self = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return [.. Directory.EnumerateDirectories("/proc")
            .Select(Path.GetFileName)
            .Where(name => int.TryParse(name, out _))
            .Where(pid =>
            {
                try
                {
                    var stat = File.ReadAllText($"/proc/{pid}/stat");
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    return fields[0] != "Z" && fields[1] == self && File.ReadAllText($"/proc/{pid}/cmdline").Contains("\0worker\0", StringComparison.Ordinal);
                }
                catch (IOException)
                {
                    return false;
                }
            })
            .Select(pid => int.Parse(pid!, System.Globalization.CultureInfo.InvariantCulture))];
    }

}
