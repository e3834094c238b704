using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LockN.Tests.Dispatch;

/// <summary>
/// Stopping a managed server that ignores SIGTERM: LockN sends SIGKILL once <c>StopGraceSeconds</c> have passed. The
/// real llama-server always heeds SIGTERM, so the server here is a stand-in executable that ignores it and never loads.
/// </summary>
[Collection(typeof(Transcription.SlotDisciplineCollection))]
public class StopEscalationTests(StopEscalationTests.Fixture server, ITestOutputHelper output) : IClassFixture<StopEscalationTests.Fixture>
{
    public const double GraceSeconds = 1;

    public sealed class Fixture : LockNServerFixture
    {
        public string Script { get; } = Path.Combine(Path.GetTempPath(), $"lockn-deaf-server-{Guid.NewGuid():N}.sh");

        protected override bool WaitsForWhisper => false;

        protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
        {
            ["Dispatch:LlamaServerPath"] = Script,
            ["Dispatch:StopGraceSeconds"] = GraceSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Dispatch:ManagedServers:0:Name"] = "deaf",
            ["Dispatch:ManagedServers:0:Model"] = Path.Combine(ManagedDispatchFixture.LlamaModels, RealLlamaServer.ModelFile),
            ["Dispatch:ManagedServers:0:Start"] = "on_demand",
        };

        public override async ValueTask InitializeAsync()
        {
            // Ignored signals stay ignored across exec: sleep, in the script's place, ignores SIGTERM too.
            await File.WriteAllTextAsync(Script, "#!/bin/sh\ntrap '' TERM\nexec sleep 600\n");
            if (!OperatingSystem.IsWindows()) // process groups and signals are POSIX: this test is Linux's
            {
                File.SetUnixFileMode(Script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            await base.InitializeAsync();
        }

        public override async ValueTask DisposeAsync()
        {
            await base.DisposeAsync();
            File.Delete(Script);
        }
    }

    [Fact]
    public async Task A_server_that_ignores_SIGTERM_gets_SIGKILL_after_the_grace_period()
    {
        using (var start = await server.Client.PostAsync("/admin/backends/deaf/start", null))
        {
            var started = await start.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("loading", started.GetProperty("state").GetString()); // it never answers /health
        }

        var pid = (await server.Client.GetFromJsonAsync<JsonElement>("/admin/backends/deaf")).GetProperty("process").GetProperty("pid").GetInt32();
        Assert.True(ManagedServerTests.IsAlive(pid));

        var stopping = Stopwatch.GetTimestamp();
        using var stop = await server.Client.PostAsync("/admin/backends/deaf/stop", null);
        var took = Stopwatch.GetElapsedTime(stopping);
        output.WriteLine($"stopped after {took.TotalSeconds:0.00} s (grace {GraceSeconds} s)");
        Assert.Equal(HttpStatusCode.OK, stop.StatusCode);
        Assert.Equal("stopped", (await stop.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString());
        Assert.InRange(took.TotalSeconds, GraceSeconds - 0.05, GraceSeconds + 3);
        await ManagedServerTests.WaitUntilDeadAsync(pid);
        Assert.Contains(server.Logs.Lines, l => l.Contains("did not stop within", StringComparison.Ordinal) && l.Contains("SIGTERM", StringComparison.Ordinal));
    }
}
