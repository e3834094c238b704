namespace LockN.Scheduling;

/// <summary>What a scheduler guards: one of LockN's model kinds.</summary>
internal enum ModelKind
{
    Transcription,
    Classification,
    Chat,
}

/// <summary>A scheduler with what it serves.</summary>
internal sealed record RegisteredScheduler(ModelKind Kind, SlotScheduler Scheduler);

/// <summary>
/// Every model's slots and queue, created in one place with the one clock, so that health, the console and metrics
/// read them from here rather than from each feature.
/// </summary>
internal sealed class SlotSchedulers(TimeProvider time)
{
    private readonly Lock gate = new();
    private readonly List<RegisteredScheduler> all = [];

    public IReadOnlyList<RegisteredScheduler> All
    {
        get
        {
            lock (gate)
            {
                return [.. all];
            }
        }
    }

    public SlotScheduler Create(ModelKind kind, string name, int slots, int queueLength, TimeSpan queueDeadline)
    {
        var scheduler = new SlotScheduler(name, slots, queueLength, queueDeadline, time);
        lock (gate)
        {
            all.Add(new RegisteredScheduler(kind, scheduler));
        }

        return scheduler;
    }

    /// <summary>A scheduler whose model is gone (a backend removed at run time) leaves the reports.</summary>
    public void Remove(SlotScheduler scheduler)
    {
        lock (gate)
        {
            all.RemoveAll(r => r.Scheduler == scheduler);
        }
    }
}
