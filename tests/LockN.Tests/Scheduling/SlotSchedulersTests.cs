using LockN.Classification;
using LockN.Dispatch;
using LockN.Scheduling;
using LockN.Tests.Dispatch;
using LockN.Transcription;

namespace LockN.Tests.Scheduling;

/// <summary>One registry knows every model's slots and queue: what health, the console and metrics read.</summary>
public class SlotSchedulersTests(DispatchServerFixture server) : IClassFixture<DispatchServerFixture>
{
    [Fact]
    public void Every_whisper_model_yamnet_and_backend_has_its_scheduler_in_the_registry()
    {
        var registered = server.Services.GetRequiredService<SlotSchedulers>().All;
        var whisper = server.Services.GetRequiredService<WhisperModels>().All.Select(h => h.Scheduler);
        var yamnet = server.Services.GetRequiredService<YamnetHost>().Scheduler;
        var backends = server.Services.GetRequiredService<BackendRegistry>().All.Select(b => b.Scheduler);

        var expected = whisper.Select(s => $"{ModelKind.Transcription} {s.Name}")
            .Append($"{ModelKind.Classification} {yamnet.Name}")
            .Concat(backends.Select(s => $"{ModelKind.Chat} {s.Name}"));
        Assert.Equal(
            expected.Order(StringComparer.Ordinal),
            registered.Select(e => $"{e.Kind} {e.Scheduler.Name}").Order(StringComparer.Ordinal));
        Assert.All(whisper.Append(yamnet).Concat(backends), s => Assert.Contains(registered, e => ReferenceEquals(e.Scheduler, s)));
    }
}
