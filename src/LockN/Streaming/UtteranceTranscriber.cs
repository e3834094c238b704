using System.Text;
using System.Threading.Channels;
using LockN.Audio;
using LockN.Scheduling;
using LockN.Transcription;
using LockN.Transcription.Workers;

namespace LockN.Streaming;

/// <summary>
/// Takes a stream's finished utterances to a Whisper slot, one at a time and in order, and, while a slot is idle,
/// decodes the utterance in progress for a partial transcript at most every <c>partial_interval_ms</c>. It sleeps
/// until something happens: an utterance was finished, audio arrived, the partial interval ran out (a timer on the
/// injected clock), or the input ended.
/// </summary>
internal sealed class UtteranceTranscriber : IDisposable
{
    private readonly AudioPipeline pipeline;
    private readonly StreamBacklog backlog;
    private readonly ChannelWriter<PipelineEvent> events;
    private readonly TimeProvider time;
    private readonly Channel<UtteranceAudio> finished = Channel.CreateUnbounded<UtteranceAudio>(new UnboundedChannelOptions { SingleReader = true });

    // One pending wake-up is enough: each time it wakes, the loop looks at everything.
    private readonly Channel<bool> wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ITimer partialTimer;

    private PartialMark lastPartial = new(-1, 0);
    private long? lastPartialAt;

    public UtteranceTranscriber(AudioPipeline pipeline, StreamBacklog backlog, ChannelWriter<PipelineEvent> events, TimeProvider time)
    {
        this.pipeline = pipeline;
        this.backlog = backlog;
        this.events = events;
        this.time = time;
        partialTimer = time.CreateTimer(_ => Wake(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Queues a finished utterance; it counts towards the backlog until it is transcribed.</summary>
    public void Enqueue(UtteranceAudio utterance)
    {
        backlog.Add(utterance.Samples.Length);
        finished.Writer.TryWrite(utterance);
        Wake();
    }

    /// <summary>New audio for the utterance in progress: a partial may be due.</summary>
    public void AudioArrived() => Wake();

    /// <summary>No more utterances: the loop ends once the queued ones are transcribed.</summary>
    public void Complete()
    {
        finished.Writer.TryComplete();
        Wake();
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (finished.Reader.TryRead(out var next))
            {
                try
                {
                    await TranscribeAsync(next, cancellationToken);
                }
                finally
                {
                    backlog.Release(next.Samples.Length);
                }

                continue;
            }

            if (finished.Reader.Completion.IsCompleted)
            {
                return;
            }

            await PartialAsync(cancellationToken);
            await wake.Reader.ReadAsync(cancellationToken);
        }
    }

    public void Dispose() => partialTimer.Dispose();

    private void Wake() => wake.Writer.TryWrite(true);

    private async Task TranscribeAsync(UtteranceAudio audio, CancellationToken cancellationToken)
    {
        var host = pipeline.Host;
        var utterance = audio.Utterance;
        var admission = await host.Scheduler.AcquireAsync(pipeline.SlotHolder, cancellationToken);
        if (admission.Refusal(host.Model.Id) is { } refused)
        {
            events.TryWrite(new PipelineEvent.UtteranceRefused(utterance, refused));
            return;
        }

        using var lease = admission.Lease!;
        try
        {
            var offset = SamplePosition.ToSeconds(utterance.Start);
            var (text, language, words) = await RunWhisperAsync(host, audio.Samples, offset, pipeline.Settings.WordTimestamps, cancellationToken);
            events.TryWrite(new PipelineEvent.UtteranceTranscribed(utterance, text, language, words));
        }
        catch (WorkerFailedException ex)
        {
            events.TryWrite(new PipelineEvent.UtteranceFailed(utterance, ex.Message));
        }
    }

    private async Task PartialAsync(CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromMilliseconds(pipeline.Settings.PartialIntervalMs);
        if (interval <= TimeSpan.Zero || !pipeline.HasPartialAudio(lastPartial))
        {
            return;
        }

        if (lastPartialAt is { } at && interval - time.GetElapsedTime(at) is { Ticks: > 0 } wait)
        {
            partialTimer.Change(wait, Timeout.InfiniteTimeSpan);
            return;
        }

        // Partials never queue: they take a slot nobody is waiting for, or wait for the next audio to try again.
        var host = pipeline.Host;
        if (host.Scheduler.TryAcquire(pipeline.SlotHolder) is not { } lease)
        {
            return;
        }

        using (lease)
        {
            if (pipeline.CopyPartialAudio(lastPartial) is not { } partial)
            {
                return;
            }

            lastPartialAt = time.GetTimestamp();
            lastPartial = partial.Mark;
            try
            {
                var (text, _, _) = await RunWhisperAsync(host, partial.Samples, 0, words: false, cancellationToken);
                pipeline.PublishPartial(partial.ItemId, text);
            }
            catch (WorkerFailedException)
            {
                // A partial is best effort; the utterance's final transcript reports a failure that lasts.
            }
        }
    }

    private async Task<(string Text, string? Language, IReadOnlyList<TranscriptWord>? Words)> RunWhisperAsync(
        WhisperModelHost host, float[] samples, double offset, bool words, CancellationToken cancellationToken)
    {
        var settings = pipeline.Settings;
        var job = new WhisperJob { Language = settings.Language, Prompt = settings.Prompt, WordTimestamps = words };
        var text = new StringBuilder();
        string? language = null;
        List<TranscriptWord>? collected = words ? [] : null;
        using var utterance = DecodedSamples.InMemory(samples);
        await foreach (var segment in host.RunAsync(utterance, job, cancellationToken))
        {
            text.Append(segment.Text);
            language ??= segment.Language;
            if (collected is not null && segment.Words is { } segmentWords)
            {
                collected.AddRange(segmentWords.Select(w => w with { Start = Math.Round(w.Start + offset, 3), End = Math.Round(w.End + offset, 3) }));
            }
        }

        return (text.ToString().Trim(), language, collected);
    }
}
