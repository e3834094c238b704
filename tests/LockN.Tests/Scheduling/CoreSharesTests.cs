using LockN.Scheduling;
using Microsoft.Extensions.Time.Testing;

namespace LockN.Tests.Scheduling;

/// <summary>The cores' shares on a fake clock: a model keeps its share for the linger after its last computation.</summary>
public class CoreSharesTests
{
    private readonly FakeTimeProvider clock = new();

    [Fact]
    public void A_model_alone_gets_every_thread_it_wants_and_half_while_another_computes()
    {
        var shares = new CoreShares(clock, cores: 4, enabled: true);
        Assert.Equal(4, shares.ThreadsFor("whisper", 4));

        using (shares.Enter("yamnet"))
        {
            Assert.Equal(2, shares.ThreadsFor("whisper", 4));
            Assert.Equal(1, shares.ThreadsFor("whisper", 1));
            using (shares.Enter("other-whisper"))
            {
                Assert.Equal(1, shares.ThreadsFor("whisper", 4));
            }
        }

        // Its own computations never shrink a model's share.
        clock.Advance(CoreShares.Linger);
        using (shares.Enter("whisper"))
        {
            Assert.Equal(4, shares.ThreadsFor("whisper", 4));
        }
    }

    [Fact]
    public void A_model_fed_back_to_back_keeps_its_share_for_the_linger()
    {
        var shares = new CoreShares(clock, cores: 2, enabled: true);
        shares.Enter("yamnet").Dispose();

        clock.Advance(CoreShares.Linger - TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, shares.ThreadsFor("whisper", 2));

        clock.Advance(TimeSpan.FromMilliseconds(2));
        Assert.Equal(2, shares.ThreadsFor("whisper", 2));
    }

    [Fact]
    public void Switched_off_every_model_uses_all_its_threads()
    {
        var shares = new CoreShares(clock, cores: 2, enabled: false);
        using var other = shares.Enter("yamnet");
        Assert.Equal(2, shares.ThreadsFor("whisper", 2));
    }

    [Fact]
    public async Task Computations_beyond_the_share_wait_for_one_to_end()
    {
        var shares = new CoreShares(clock, cores: 2, enabled: true);
        using var whisper = shares.Enter("whisper");

        var first = shares.EnterComputation("yamnet", threadsPerRun: 1, maxConcurrent: 2, CancellationToken.None);
        var second = Task.Run(() => shares.EnterComputation("yamnet", threadsPerRun: 1, maxConcurrent: 2, CancellationToken.None));
        await Task.Delay(100);
        Assert.False(second.IsCompleted, "A second YAMNet run started while Whisper computes on a 2-core share.");

        first.Dispose();
        (await second.WaitAsync(TimeSpan.FromSeconds(10))).Dispose();
    }

    [Fact]
    public async Task A_waiting_computation_starts_when_the_other_model_has_lingered_out()
    {
        var shares = new CoreShares(clock, cores: 2, enabled: true);
        shares.Enter("whisper").Dispose();
        using var first = shares.EnterComputation("yamnet", threadsPerRun: 1, maxConcurrent: 2, CancellationToken.None);
        var second = Task.Run(() => shares.EnterComputation("yamnet", threadsPerRun: 1, maxConcurrent: 2, CancellationToken.None));
        await Task.Delay(100);
        Assert.False(second.IsCompleted);

        clock.Advance(CoreShares.Linger);
        (await second.WaitAsync(TimeSpan.FromSeconds(10))).Dispose();
    }

    [Fact]
    public async Task A_cancelled_wait_for_a_share_ends()
    {
        var shares = new CoreShares(clock, cores: 2, enabled: true);
        using var whisper = shares.Enter("whisper");
        using var first = shares.EnterComputation("yamnet", threadsPerRun: 1, maxConcurrent: 2, CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var second = Task.Run(() => shares.EnterComputation("yamnet", threadsPerRun: 1, maxConcurrent: 2, cancel.Token));

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
