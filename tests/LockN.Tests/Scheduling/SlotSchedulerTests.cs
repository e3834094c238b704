using LockN.Scheduling;
using Microsoft.Extensions.Time.Testing;

namespace LockN.Tests.Scheduling;

/// <summary>The scheduler on a fake clock: deadlines, waits and Retry-After move only when the test moves time.</summary>
public class SlotSchedulerTests
{
    private static readonly TimeSpan LongDeadline = TimeSpan.FromSeconds(30);

    private readonly FakeTimeProvider clock = new();

    private SlotScheduler Scheduler(int slots, int queueLength, TimeSpan? deadline = null) =>
        new("m", slots, queueLength, deadline ?? LongDeadline, clock);

    [Fact]
    public async Task Admits_up_to_the_slot_count_at_once()
    {
        var scheduler = Scheduler(slots: 2, queueLength: 4);
        var first = await scheduler.AcquireAsync(CancellationToken.None);
        var second = await scheduler.AcquireAsync(CancellationToken.None);

        Assert.Equal(AdmissionOutcome.Admitted, first.Outcome);
        Assert.Equal(AdmissionOutcome.Admitted, second.Outcome);
        Assert.Equal(TimeSpan.Zero, second.Waited);
        Assert.Equal(new SlotSnapshot(2, 2, 0, 4), scheduler.Snapshot());
    }

    [Fact]
    public async Task Growing_admits_waiters_and_shrinking_waits_for_holders_to_leave()
    {
        var scheduler = Scheduler(slots: 1, queueLength: 4);
        var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        var waiting = scheduler.AcquireAsync(CancellationToken.None).AsTask();
        Assert.Equal(new SlotSnapshot(1, 1, 1, 4), scheduler.Snapshot());

        scheduler.Resize(2);
        Assert.Equal(0, scheduler.Snapshot().QueueDepth); // granted by Resize itself, not later
        var admitted = await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(AdmissionOutcome.Admitted, admitted.Outcome);
        Assert.Equal(new SlotSnapshot(2, 2, 0, 4), scheduler.Snapshot());

        scheduler.Resize(1);
        Assert.Equal(new SlotSnapshot(2, 1, 0, 4), scheduler.Snapshot()); // nobody running is interrupted
        held.Dispose();
        Assert.Equal(new SlotSnapshot(1, 1, 0, 4), scheduler.Snapshot());
        Assert.Null(scheduler.TryAcquire());
        admitted.Lease!.Dispose();
        Assert.Equal(new SlotSnapshot(0, 1, 0, 4), scheduler.Snapshot());
    }

    [Fact]
    public async Task Waiters_get_freed_slots_in_arrival_order()
    {
        var scheduler = Scheduler(slots: 1, queueLength: 4);
        var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        var waiters = new List<Task<Admission>>();
        for (var i = 0; i < 3; i++)
        {
            waiters.Add(scheduler.AcquireAsync(CancellationToken.None).AsTask());
            clock.Advance(TimeSpan.FromSeconds(1)); // each arrives a second after the one before
        }

        Assert.Equal(3, scheduler.Snapshot().QueueDepth);

        // Each freed slot goes to the oldest waiter, and to nobody else.
        var previous = held;
        var waited = new List<TimeSpan>();
        for (var i = 0; i < waiters.Count; i++)
        {
            previous.Dispose();
            Assert.Equal(waiters.Count - i - 1, scheduler.Snapshot().QueueDepth);
            var admission = await waiters[i].WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(AdmissionOutcome.Admitted, admission.Outcome);
            Assert.All(waiters.Skip(i + 1), later => Assert.False(later.IsCompleted));
            waited.Add(admission.Waited);
            previous = admission.Lease!;
        }

        previous.Dispose();
        Assert.Equal([TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1)], waited);
        Assert.Equal(new SlotSnapshot(0, 1, 0, 4), scheduler.Snapshot());
    }

    [Fact]
    public async Task A_full_queue_refuses_at_once_with_a_retry_after()
    {
        var scheduler = Scheduler(slots: 1, queueLength: 1);
        using var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        using var cancel = new CancellationTokenSource();
        var waiting = scheduler.AcquireAsync(cancel.Token).AsTask();
        Assert.Equal(1, scheduler.Snapshot().QueueDepth);

        var refused = scheduler.AcquireAsync(CancellationToken.None);

        Assert.True(refused.IsCompleted); // at once: a full queue never waits
        var admission = await refused;
        Assert.Equal(AdmissionOutcome.QueueFull, admission.Outcome);
        Assert.Null(admission.Lease);
        Assert.True(admission.RetryAfter >= TimeSpan.FromSeconds(1));
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
    }

    [Fact]
    public async Task Retry_after_grows_with_how_long_slots_are_held()
    {
        var scheduler = Scheduler(slots: 1, queueLength: 1);
        for (var i = 0; i < 5; i++)
        {
            using var lease = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
            clock.Advance(TimeSpan.FromSeconds(30));
        }

        using var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        using var cancel = new CancellationTokenSource();
        var waiting = scheduler.AcquireAsync(cancel.Token).AsTask();
        var refused = await scheduler.AcquireAsync(CancellationToken.None);

        // Mean hold after five 30 s holds (weight 0.2 each, from 1 s): 30 - 29 × 0.8⁵ ≈ 20.5 s; the refused request
        // is behind the holder and the one waiter: 2 × 20.5 s, rounded up to whole seconds.
        Assert.Equal(AdmissionOutcome.QueueFull, refused.Outcome);
        Assert.Equal(TimeSpan.FromSeconds(41), refused.RetryAfter);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
    }

    [Fact]
    public async Task A_waiter_past_its_deadline_is_told_so_and_leaves_the_queue()
    {
        var deadline = TimeSpan.FromSeconds(10);
        var scheduler = Scheduler(slots: 1, queueLength: 2, deadline);
        using var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;

        var waiting = scheduler.AcquireAsync(CancellationToken.None).AsTask();
        clock.Advance(deadline - TimeSpan.FromMilliseconds(1));
        var queuedBeforeDeadline = scheduler.Snapshot().QueueDepth;
        clock.Advance(TimeSpan.FromMilliseconds(1));
        var admission = await waiting.WaitAsync(TimeSpan.FromSeconds(5));

        Assert.Equal(1, queuedBeforeDeadline);
        Assert.Equal(AdmissionOutcome.DeadlineExceeded, admission.Outcome);
        Assert.Null(admission.Lease);
        Assert.Equal(deadline, admission.Waited);
        Assert.True(admission.RetryAfter >= TimeSpan.FromSeconds(1));
        Assert.Equal(0, scheduler.Snapshot().QueueDepth);
    }

    [Fact]
    public async Task A_cancelled_waiter_never_takes_a_slot()
    {
        var scheduler = Scheduler(slots: 1, queueLength: 2);
        var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        using var cancel = new CancellationTokenSource();
        var waiting = scheduler.AcquireAsync(cancel.Token).AsTask();
        Assert.Equal(1, scheduler.Snapshot().QueueDepth);

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        held.Dispose();

        Assert.Equal(new SlotSnapshot(0, 1, 0, 2), scheduler.Snapshot());
    }

    [Fact]
    public async Task Disposing_a_lease_twice_frees_one_slot()
    {
        var scheduler = Scheduler(slots: 2, queueLength: 0);
        var first = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        using var second = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;

        first.Dispose();
        first.Dispose();

        Assert.Equal(1, scheduler.Snapshot().Busy);
    }
}
