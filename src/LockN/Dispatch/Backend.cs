using LockN.Scheduling;

namespace LockN.Dispatch;

internal enum BackendState
{
    /// <summary>Not checked yet (the first health check is under way).</summary>
    Unknown,
    Healthy,
    Unhealthy,
}

/// <summary>
/// One model server as LockN sees it: where it is, the slots and queue in front of it, and whether it answers.
/// Health comes from the active checks of <see cref="BackendHealthChecker"/> and from failed requests (passive).
/// </summary>
internal sealed class Backend
{
    private readonly Lock gate = new();
    private readonly TaskCompletionSource firstCheck = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeProvider time;
    private double meanFirstByteMs;

    public Backend(BackendOptions options, SlotSchedulers schedulers, TimeProvider time)
    {
        Options = options;
        Name = options.Name;
        BaseUrl = new Uri(options.Url.TrimEnd('/') + "/");
        Models = options.Models.Select(m => m.Trim()).ToArray();
        // Until the server says how many slots it has, one: never more than it can take.
        Scheduler = schedulers.Create(ModelKind.Chat, options.Name, Math.Max(1, options.Slots), options.QueueLength, TimeSpan.FromSeconds(options.DeadlineSeconds));
        this.time = time;
        SlotsSource = options.Slots > 0 ? "configured" : "unknown";
    }

    public BackendOptions Options { get; }
    public string Name { get; }
    public Uri BaseUrl { get; }

    /// <summary>The backend's model id first, then its aliases.</summary>
    public IReadOnlyList<string> Models { get; }

    public string ModelId => Models[0];
    public SlotScheduler Scheduler { get; }
    public TimeSpan Deadline => Scheduler.QueueDeadline;

    /// <summary>Where the slot count came from: configured, props, slots, or unknown (not read yet).</summary>
    public string SlotsSource { get; private set; }

    public bool SlotsKnown => SlotsSource != "unknown";
    public BackendState State { get; private set; }
    public string? LastError { get; private set; }
    public DateTimeOffset? LastCheckedAt { get; private set; }
    public double? HealthLatencyMs { get; private set; }

    /// <summary>Mean time from sending a request to the backend's response headers (exponentially weighted).</summary>
    public double? MeanFirstByteMs { get { lock (gate) { return meanFirstByteMs > 0 ? meanFirstByteMs : null; } } }

    /// <summary>Completes once the first health check has an answer, so requests at start-up wait for it rather than fail.</summary>
    public Task FirstCheck => firstCheck.Task;

    public bool Serves(string model) => Models.Contains(model, StringComparer.OrdinalIgnoreCase);

    public void SetSlots(int slots, string source)
    {
        Scheduler.Resize(slots);
        SlotsSource = source;
    }

    /// <summary>Returns true when this changed the state (for logging transitions only).</summary>
    public bool MarkHealthy(TimeSpan latency)
    {
        bool changed;
        lock (gate)
        {
            changed = State != BackendState.Healthy;
            State = BackendState.Healthy;
            LastError = null;
            LastCheckedAt = time.GetUtcNow();
            HealthLatencyMs = Math.Round(latency.TotalMilliseconds, 2);
        }

        firstCheck.TrySetResult();
        return changed;
    }

    public bool MarkUnhealthy(string error, bool fromCheck)
    {
        bool changed;
        lock (gate)
        {
            changed = State != BackendState.Unhealthy;
            State = BackendState.Unhealthy;
            LastError = error;
            if (fromCheck)
            {
                LastCheckedAt = time.GetUtcNow();
                HealthLatencyMs = null;
            }
        }

        firstCheck.TrySetResult();
        return changed;
    }

    public void RecordFirstByte(TimeSpan elapsed)
    {
        lock (gate)
        {
            var ms = elapsed.TotalMilliseconds;
            meanFirstByteMs = meanFirstByteMs == 0 ? ms : (0.8 * meanFirstByteMs) + (0.2 * ms);
        }
    }
}
