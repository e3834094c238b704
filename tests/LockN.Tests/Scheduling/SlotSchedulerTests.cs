using LockN.Scheduling;

namespace LockN.Tests.Scheduling;

public class SlotSchedulerTests
{
    private static readonly TimeSpan LongDeadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Admits_up_to_the_slot_count_at_once()
    {
        var scheduler = new SlotScheduler("m", slots: 2, queueLength: 4, LongDeadline);
        var first = await scheduler.AcquireAsync(CancellationToken.None);
        var second = await scheduler.AcquireAsync(CancellationToken.None);

        Assert.Equal(AdmissionOutcome.Admitted, first.Outcome);
        Assert.Equal(AdmissionOutcome.Admitted, second.Outcome);
        Assert.Equal(new SlotSnapshot(2, 2, 0, 4), scheduler.Snapshot());
    }

    [Fact]
    public async Task Growing_admits_waiters_and_shrinking_waits_for_holders_to_leave()
    {
        var scheduler = new SlotScheduler("m", slots: 1, queueLength: 4, LongDeadline);
        var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        var waiting = scheduler.AcquireAsync(CancellationToken.None).AsTask();
        Assert.Equal(new SlotSnapshot(1, 1, 1, 4), scheduler.Snapshot());

        scheduler.Resize(2);
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
        var scheduler = new SlotScheduler("m", slots: 1, queueLength: 4, LongDeadline);
        var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        var order = new List<int>();
        var waiters = Enumerable.Range(1, 3).Select(async i =>
        {
            await Task.Delay(i * 20);
            var admission = await scheduler.AcquireAsync(CancellationToken.None);
            lock (order)
            {
                order.Add(i);
            }

            admission.Lease!.Dispose();
        }).ToArray();
        await WaitUntil(() => scheduler.Snapshot().QueueDepth == 3);

        held.Dispose();
        await Task.WhenAll(waiters);

        Assert.Equal([1, 2, 3], order);
        Assert.Equal(new SlotSnapshot(0, 1, 0, 4), scheduler.Snapshot());
    }

    [Fact]
    public async Task A_full_queue_refuses_at_once_with_a_retry_after()
    {
        var scheduler = new SlotScheduler("m", slots: 1, queueLength: 1, LongDeadline);
        using var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        using var cancel = new CancellationTokenSource();
        var waiting = scheduler.AcquireAsync(cancel.Token).AsTask();
        await WaitUntil(() => scheduler.Snapshot().QueueDepth == 1);

        var refused = await scheduler.AcquireAsync(CancellationToken.None);

        Assert.Equal(AdmissionOutcome.QueueFull, refused.Outcome);
        Assert.Null(refused.Lease);
        Assert.True(refused.RetryAfter >= TimeSpan.FromSeconds(1));
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
    }

    [Fact]
    public async Task A_waiter_past_its_deadline_is_told_so_and_leaves_the_queue()
    {
        var scheduler = new SlotScheduler("m", slots: 1, queueLength: 2, TimeSpan.FromMilliseconds(200));
        using var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;

        var admission = await scheduler.AcquireAsync(CancellationToken.None);

        Assert.Equal(AdmissionOutcome.DeadlineExceeded, admission.Outcome);
        Assert.True(admission.Waited >= TimeSpan.FromMilliseconds(190), $"waited {admission.Waited}");
        Assert.Equal(0, scheduler.Snapshot().QueueDepth);
    }

    [Fact]
    public async Task A_cancelled_waiter_never_takes_a_slot()
    {
        var scheduler = new SlotScheduler("m", slots: 1, queueLength: 2, LongDeadline);
        var held = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        using var cancel = new CancellationTokenSource();
        var waiting = scheduler.AcquireAsync(cancel.Token).AsTask();
        await WaitUntil(() => scheduler.Snapshot().QueueDepth == 1);

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        held.Dispose();

        Assert.Equal(new SlotSnapshot(0, 1, 0, 2), scheduler.Snapshot());
    }

    [Fact]
    public async Task Disposing_a_lease_twice_frees_one_slot()
    {
        var scheduler = new SlotScheduler("m", slots: 2, queueLength: 0, LongDeadline);
        var first = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;
        using var second = (await scheduler.AcquireAsync(CancellationToken.None)).Lease!;

        first.Dispose();
        first.Dispose();

        Assert.Equal(1, scheduler.Snapshot().Busy);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached within 5 s");
            await Task.Delay(5);
        }
    }
}
