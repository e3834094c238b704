using LockN.Streaming;
using Microsoft.Extensions.Time.Testing;

namespace LockN.Tests.Streaming;

/// <summary>One server whose models the pipeline and session tests share; they run one after another.</summary>
[CollectionDefinition]
public sealed class StreamingPipelineCollection : ICollectionFixture<StreamingServerFixture>;

/// <summary>The audio pipeline without a protocol: commands in, domain events out, on the real models.</summary>
[Collection(typeof(StreamingPipelineCollection))]
public class AudioPipelineTests(StreamingServerFixture server)
{
    private static readonly float[] Jfk = StreamAudio.ReadWav(TestAssets.JfkWav).Samples;

    [Fact]
    public async Task Partials_wait_for_the_partial_interval_on_the_injected_clock()
    {
        var clock = new FakeTimeProvider();
        await using var pipeline = await OpenAsync(clock, partialIntervalMs: 60_000);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        pipeline.Append(StreamAudio.Pcm16(Jfk[..(3 * 16000)]));
        var first = await NextAsync<PipelineEvent.PartialTranscript>(pipeline, timeout.Token);
        pipeline.Append(StreamAudio.Pcm16(Jfk[(3 * 16000)..(6 * 16000)]));
        clock.Advance(TimeSpan.FromSeconds(60)); // the real clock would keep the next partial a minute away
        var second = await NextAsync<PipelineEvent.PartialTranscript>(pipeline, timeout.Token);

        Assert.Equal(first.ItemId, second.ItemId); // the test weights' text is meaningless, often empty
    }

    [Fact]
    public async Task Each_committed_utterance_names_the_one_before_and_its_length()
    {
        await using var pipeline = await OpenAsync(TimeProvider.System, partialIntervalMs: 0);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        pipeline.Append(StreamAudio.Pcm16(Jfk[..(2 * 16000)]));
        pipeline.Commit();
        pipeline.Append(StreamAudio.Pcm16(Jfk[(2 * 16000)..(5 * 16000)]));
        pipeline.Commit();
        var first = await NextAsync<PipelineEvent.UtteranceCommitted>(pipeline, timeout.Token);
        var second = await NextAsync<PipelineEvent.UtteranceCommitted>(pipeline, timeout.Token);
        var transcribed = await NextAsync<PipelineEvent.UtteranceTranscribed>(pipeline, timeout.Token);

        Assert.Null(first.Utterance.PreviousItemId);
        Assert.Equal(first.Utterance.ItemId, second.Utterance.PreviousItemId);
        Assert.Equal(UtteranceEnd.Committed, second.Utterance.EndedBy);
        Assert.Equal(TimeSpan.FromSeconds(2), first.Utterance.Duration);
        Assert.Equal(TimeSpan.FromSeconds(3), second.Utterance.Duration);
        Assert.Equal(first.Utterance, transcribed.Utterance);
    }

    [Fact]
    public async Task Clear_drops_the_utterance_in_progress()
    {
        await using var pipeline = await OpenAsync(TimeProvider.System, partialIntervalMs: 0);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        pipeline.Append(StreamAudio.Pcm16(Jfk[..(2 * 16000)]));
        pipeline.Clear();
        pipeline.Commit();
        await NextAsync<PipelineEvent.NothingToCommit>(pipeline, timeout.Token);
        pipeline.Append(StreamAudio.Pcm16(Jfk[(2 * 16000)..(3 * 16000)]));
        pipeline.Commit();
        var committed = await NextAsync<PipelineEvent.UtteranceCommitted>(pipeline, timeout.Token);

        Assert.Equal(2 * 16000, committed.Utterance.Start);
        Assert.Equal(3 * 16000, committed.Utterance.End);
    }

    [Fact]
    public void A_partial_gives_the_text_to_append_unless_it_revised_what_was_sent()
    {
        var partial = new PipelineEvent.PartialTranscript("item_1", "And so my fellow Americans");

        Assert.Equal(" fellow Americans", partial.AppendedTo("And so my"));
        Assert.Equal("And so my fellow Americans", partial.AppendedTo(""));
        Assert.Null(partial.AppendedTo("And so, my"));
    }

    /// <summary>A pipeline on the server's models with <paramref name="clock"/>, committed by hand.</summary>
    private async Task<AudioPipeline> OpenAsync(TimeProvider clock, int partialIntervalMs)
    {
        var factory = ActivatorUtilities.CreateInstance<AudioPipelineFactory>(server.Services, clock);
        Assert.Null(await factory.CheckReadyAsync(CancellationToken.None));
        var pipeline = factory.Create(CancellationToken.None);
        Assert.Null(pipeline.Apply(pipeline.Settings with { TurnDetection = null, PartialIntervalMs = partialIntervalMs }));
        return pipeline;
    }

    private static async Task<T> NextAsync<T>(AudioPipeline pipeline, CancellationToken cancellationToken)
        where T : PipelineEvent
    {
        while (true)
        {
            var next = await pipeline.Events.ReadAsync(cancellationToken);
            Assert.IsNotType<PipelineEvent.UtteranceRefused>(next);
            if (next is T wanted)
            {
                return wanted;
            }
        }
    }
}
