using LockN.Classification;
using LockN.Dispatch;
using LockN.Health;
using LockN.Scheduling;
using LockN.Streaming;
using LockN.Transcription;

namespace LockN.WebConsole;

/// <summary>
/// What the Overview page shows at one moment: the readiness report, who holds each slot (by scheduler name: a model
/// id or a backend name; not in the public readiness report, which needs no key) and the open live streams.
/// </summary>
internal sealed record OverviewSnapshot(DateTimeOffset At, ReadinessReport Readiness, IReadOnlyDictionary<string, IReadOnlyList<SlotHolding>> Holdings, int OpenStreams)
{
    public IReadOnlyList<SlotHolding> HoldingsOf(string scheduler) => Holdings.TryGetValue(scheduler, out var held) ? held : [];
}

/// <summary>
/// Pushes a fresh <see cref="OverviewSnapshot"/> to every open Overview page twice a second, built from the same
/// services <c>/health/ready</c> reads (one report, no second copy of any rule). The timer runs only while a page
/// listens.
/// </summary>
internal sealed class OverviewFeed(WhisperModels models, YamnetHost yamnet, BackendRegistry backends, SlotSchedulers schedulers, StreamLimits streams, TimeProvider time) : IDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);

    private readonly Lock gate = new();
    private readonly List<Action<OverviewSnapshot>> listeners = [];
    private ITimer? timer;

    public OverviewSnapshot Current() => new(
        time.GetUtcNow(),
        ReadinessReport.From(models, yamnet, backends),
        schedulers.All.GroupBy(r => r.Scheduler.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => (IReadOnlyList<SlotHolding>)[.. g.SelectMany(r => r.Scheduler.Holdings())], StringComparer.Ordinal),
        streams.Open);

    /// <summary>Calls <paramref name="listener"/> with each snapshot until the returned subscription is disposed.</summary>
    public IDisposable Subscribe(Action<OverviewSnapshot> listener)
    {
        lock (gate)
        {
            listeners.Add(listener);
            timer ??= time.CreateTimer(_ => Publish(), null, Interval, Interval);
        }

        return new Subscription(this, listener);
    }

    public void Dispose()
    {
        lock (gate)
        {
            timer?.Dispose();
            timer = null;
        }
    }

    private void Publish()
    {
        Action<OverviewSnapshot>[] now;
        lock (gate)
        {
            now = [.. listeners];
        }

        if (now.Length == 0)
        {
            return;
        }

        var snapshot = Current();
        foreach (var listener in now)
        {
            listener(snapshot);
        }
    }

    private void Unsubscribe(Action<OverviewSnapshot> listener)
    {
        lock (gate)
        {
            listeners.Remove(listener);
            if (listeners.Count == 0)
            {
                timer?.Dispose();
                timer = null;
            }
        }
    }

    private sealed class Subscription(OverviewFeed feed, Action<OverviewSnapshot> listener) : IDisposable
    {
        public void Dispose() => feed.Unsubscribe(listener);
    }
}
