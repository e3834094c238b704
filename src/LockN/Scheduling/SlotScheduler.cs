namespace LockN.Scheduling;

internal enum AdmissionOutcome
{
    Admitted,
    QueueFull,
    DeadlineExceeded,
}

/// <summary>The answer to a request for a slot: a lease to dispose, or why there is none.</summary>
internal readonly record struct Admission(AdmissionOutcome Outcome, SlotLease? Lease, TimeSpan RetryAfter, TimeSpan Waited);

/// <summary>What a scheduler looks like right now, for /health/ready and the console.</summary>
internal sealed record SlotSnapshot(int Busy, int Total, int QueueDepth, int QueueCapacity);

/// <summary>Who holds a slot: the key by its id and name, and what for. For operators only (the console), never in a public report. Public only because the console's components (public classes) take it as a parameter.</summary>
public sealed record SlotHolder(string? KeyId, string? KeyName, string Purpose)
{
    public static SlotHolder Of(HttpContext context) => new(
        context.User.FindFirst(Keys.ApiKeyClaims.KeyId)?.Value,
        context.User.FindFirst(Keys.ApiKeyClaims.KeyName)?.Value,
        $"{context.Request.Method} {context.Request.Path}");
}

/// <summary>One held slot: by whom, and for how long so far.</summary>
public sealed record SlotHolding(SlotHolder? Holder, TimeSpan HeldFor);

/// <summary>
/// A fixed number of processing slots with a bounded FIFO wait queue in front of them. A request either gets
/// a slot at once, waits its turn until a deadline, or is refused at once when the queue is full — so no
/// request can pile up behind a busy model, and every wait ends with an answer.
/// </summary>
internal sealed class SlotScheduler
{
    private readonly Lock gate = new();
    private readonly LinkedList<Waiter> queue = new();
    private readonly HashSet<SlotLease> held = [];
    private readonly TimeProvider time;
    private int busy;

    // Exponentially weighted mean of how long a slot is held, for the Retry-After estimate.
    private double meanHoldSeconds = 1;

    public SlotScheduler(string name, int slots, int queueLength, TimeSpan queueDeadline, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(queueLength);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(queueDeadline, TimeSpan.Zero);
        Name = name;
        Slots = slots;
        QueueLength = queueLength;
        QueueDeadline = queueDeadline;
        time = timeProvider ?? TimeProvider.System;
    }

    public string Name { get; }

    /// <summary>Slots right now; <see cref="Resize"/> changes it when a backend reports its own count.</summary>
    public int Slots { get; private set; }
    public int QueueLength { get; }
    public TimeSpan QueueDeadline { get; }

    /// <summary>The slots held now, longest first: a slot held long after its client left shows here by name.</summary>
    public IReadOnlyList<SlotHolding> Holdings()
    {
        lock (gate)
        {
            return [.. held.OrderBy(l => l.AcquiredAt).Select(l => new SlotHolding(l.Holder, time.GetElapsedTime(l.AcquiredAt)))];
        }
    }

    public SlotSnapshot Snapshot()
    {
        lock (gate)
        {
            return new SlotSnapshot(busy, Slots, queue.Count, QueueLength);
        }
    }

    /// <summary>
    /// Changes the slot count. Growing hands the new slots to the oldest waiters; shrinking takes slots away as
    /// their holders release them, so nobody already running is interrupted.
    /// </summary>
    public void Resize(int slots)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        var granted = new List<Waiter>();
        lock (gate)
        {
            Slots = slots;
            while (busy < Slots && queue.First is { } first)
            {
                queue.RemoveFirst();
                first.Value.Node = null;
                busy++;
                granted.Add(first.Value);
            }
        }

        foreach (var waiter in granted)
        {
            waiter.Grant(Lease(waiter.Holder));
        }
    }

    /// <summary>A slot if one is free and nobody is waiting for it; never queues. For best-effort work such as partial transcripts.</summary>
    public SlotLease? TryAcquire(SlotHolder? holder = null)
    {
        lock (gate)
        {
            if (busy < Slots && queue.Count == 0)
            {
                busy++;
                return LeaseLocked(holder);
            }
        }

        return null;
    }

    /// <summary>
    /// Gets a slot, waiting in line at most <see cref="QueueDeadline"/>. Throws <see cref="OperationCanceledException"/>
    /// only when <paramref name="cancellationToken"/> (the client) gives up.
    /// </summary>
    public ValueTask<Admission> AcquireAsync(CancellationToken cancellationToken) => AcquireAsync(null, cancellationToken);

    /// <inheritdoc cref="AcquireAsync(CancellationToken)"/>
    /// <param name="holder">Who will hold the slot, as the console shows it.</param>
    public async ValueTask<Admission> AcquireAsync(SlotHolder? holder, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Waiter waiter;
        lock (gate)
        {
            if (busy < Slots && queue.Count == 0)
            {
                busy++;
                return new Admission(AdmissionOutcome.Admitted, LeaseLocked(holder), TimeSpan.Zero, TimeSpan.Zero);
            }

            if (queue.Count >= QueueLength)
            {
                return new Admission(AdmissionOutcome.QueueFull, null, EstimateRetryAfter(), TimeSpan.Zero);
            }

            waiter = new Waiter(this, time.GetTimestamp(), holder);
            waiter.Node = queue.AddLast(waiter);
        }

        using var deadline = new CancellationTokenSource(QueueDeadline, time);
        using var onDeadline = deadline.Token.UnsafeRegister(static state => ((Waiter)state!).Abandon(), waiter);
        using var onCancel = cancellationToken.UnsafeRegister(static state => ((Waiter)state!).Abandon(), waiter);
        var granted = await waiter.Task.ConfigureAwait(false);
        var waited = time.GetElapsedTime(waiter.EnqueuedAt);
        if (granted is not null)
        {
            return new Admission(AdmissionOutcome.Admitted, granted, TimeSpan.Zero, waited);
        }

        cancellationToken.ThrowIfCancellationRequested();
        return new Admission(AdmissionOutcome.DeadlineExceeded, null, EstimateRetryAfter(), waited);
    }

    internal void Release(SlotLease lease)
    {
        Waiter? next = null;
        SlotLease? handedOn = null;
        lock (gate)
        {
            held.Remove(lease);
            var heldSeconds = time.GetElapsedTime(lease.AcquiredAt).TotalSeconds;
            meanHoldSeconds = (0.8 * meanHoldSeconds) + (0.2 * heldSeconds);
            if (busy > Slots)
            {
                busy--; // shrunk by Resize: this slot is gone
            }
            else if (queue.First is { } first)
            {
                // Hand the slot straight to the oldest waiter: busy stays the same.
                queue.RemoveFirst();
                first.Value.Node = null;
                next = first.Value;
                handedOn = LeaseLocked(next.Holder);
            }
            else
            {
                busy--;
            }
        }

        if (next is not null)
        {
            next.Grant(handedOn!);
        }
    }

    private SlotLease Lease(SlotHolder? holder)
    {
        lock (gate)
        {
            return LeaseLocked(holder);
        }
    }

    private SlotLease LeaseLocked(SlotHolder? holder)
    {
        var lease = new SlotLease(this, time.GetTimestamp(), holder);
        held.Add(lease);
        return lease;
    }

    private void Remove(Waiter waiter, Action complete)
    {
        lock (gate)
        {
            if (waiter.Node is null)
            {
                return; // already granted
            }

            queue.Remove(waiter.Node);
            waiter.Node = null;
        }

        complete();
    }

    private TimeSpan EstimateRetryAfter()
    {
        lock (gate)
        {
            var seconds = meanHoldSeconds * (queue.Count + 1) / Slots;
            return TimeSpan.FromSeconds(Math.Clamp(Math.Ceiling(seconds), 1, 3600));
        }
    }

    private sealed class Waiter(SlotScheduler owner, long enqueuedAt, SlotHolder? holder)
    {
        private readonly TaskCompletionSource<SlotLease?> completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SlotHolder? Holder { get; } = holder;

        public long EnqueuedAt { get; } = enqueuedAt;
        public LinkedListNode<Waiter>? Node { get; set; }
        public Task<SlotLease?> Task => completion.Task;

        public void Grant(SlotLease lease)
        {
            if (!completion.TrySetResult(lease))
            {
                lease.Dispose();
            }
        }

        /// <summary>Leaves the queue (client gone or deadline passed) unless a slot was granted first.</summary>
        public void Abandon() => owner.Remove(this, () => completion.TrySetResult(null));
    }
}

/// <summary>A held slot. Disposing it frees the slot (or hands it to the next in line) exactly once.</summary>
internal sealed class SlotLease : IDisposable
{
    private SlotScheduler? owner;

    internal SlotLease(SlotScheduler owner, long acquiredAt, SlotHolder? holder)
    {
        this.owner = owner;
        AcquiredAt = acquiredAt;
        Holder = holder;
    }

    internal long AcquiredAt { get; }

    internal SlotHolder? Holder { get; }

    public void Dispose() => Interlocked.Exchange(ref owner, null)?.Release(this);
}
