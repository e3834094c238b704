using System.Threading.Channels;
using LockN.Classification;
using LockN.Scheduling;

namespace LockN.Streaming;

/// <summary>
/// Scores a stream's audio with YAMNet on YAMNet's own slots, about a second of windows at a time, and reports a
/// sound event for each run of consecutive windows in which a label stays at or above the session's threshold
/// (catch-all labels left out), when the label drops below it or the input ends.
/// </summary>
internal sealed class SoundEventClassifier(YamnetHost yamnet, AudioPipeline pipeline, StreamBacklog backlog, ChannelWriter<PipelineEvent> events)
{
    private readonly Channel<WindowBatch> batches = Channel.CreateUnbounded<WindowBatch>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<int, SoundSpan> open = [];
    private YamnetModel? model;

    // The next window to queue starts at nextWindow × hop (guarded by the pipeline's lock).
    private long nextWindow;

    /// <summary>Classification starts at the first whole window from <paramref name="position"/> on.</summary>
    public void StartAt(long position) => nextWindow = (position + YamnetModel.HopSamples - 1) / YamnetModel.HopSamples;

    /// <summary>
    /// Queues the whole windows the buffer has gained, two hops (~1 s) at a time; with <paramref name="final"/>,
    /// whatever is left, zero-padded. Called under the pipeline's lock.
    /// </summary>
    public void Cut(AudioChunkBuffer buffer, bool final)
    {
        var first = nextWindow * YamnetModel.HopSamples;
        var ready = buffer.End < first + YamnetModel.WindowSamples ? 0 : 1 + ((buffer.End - first - YamnetModel.WindowSamples) / YamnetModel.HopSamples);
        if (ready < 2 && !(final && buffer.End > first))
        {
            return;
        }

        var count = Math.Max(1, ready);
        var end = Math.Min(buffer.End, first + ((count - 1) * YamnetModel.HopSamples) + YamnetModel.WindowSamples);
        var samples = buffer.Copy(Math.Max(first, buffer.Start), end);
        backlog.Add(count * YamnetModel.HopSamples);
        batches.Writer.TryWrite(new WindowBatch(nextWindow, (int)count, samples));
        nextWindow += count;
    }

    /// <summary>No more audio: the loop scores what is queued, reports the sounds still open, and ends.</summary>
    public void Complete() => batches.Writer.TryComplete();

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await foreach (var batch in batches.Reader.ReadAllAsync(cancellationToken))
        {
            try
            {
                await ScoreAsync(batch, cancellationToken);
            }
            finally
            {
                backlog.Release((long)batch.Count * YamnetModel.HopSamples);
            }
        }

        foreach (var (index, span) in open.OrderBy(e => e.Value.Start))
        {
            Report(index, span);
        }
    }

    private async Task ScoreAsync(WindowBatch batch, CancellationToken cancellationToken)
    {
        var yamnetModel = model = await yamnet.GetModelAsync().WaitAsync(cancellationToken);
        var admission = await yamnet.Scheduler.AcquireAsync(pipeline.SlotHolder, cancellationToken);
        if (admission.Refusal(YamnetModel.Id) is { } refused)
        {
            var start = batch.FirstWindow * YamnetModel.HopSamples;
            events.TryWrite(new PipelineEvent.SoundSkipped(start, start + ((long)batch.Count * YamnetModel.HopSamples), refused));
            return;
        }

        float[][] scores;
        using (admission.Lease)
        {
            scores = await yamnetModel.ComputeAsync(() => yamnetModel.Score(batch.Samples, cancellationToken), cancellationToken);
        }

        var threshold = pipeline.Settings.ClassifyThreshold;
        for (var w = 0; w < Math.Min(batch.Count, scores.Length); w++)
        {
            var start = (batch.FirstWindow + w) * YamnetModel.HopSamples;
            var end = start + YamnetModel.WindowSamples;
            var above = new HashSet<int>();
            for (var c = 0; c < scores[w].Length; c++)
            {
                if (scores[w][c] >= threshold && !yamnet.GenericLabels.Contains(yamnetModel.Classes[c].Name))
                {
                    above.Add(c);
                    open[c] = open.TryGetValue(c, out var span) ? new SoundSpan(span.Start, end, Math.Max(span.Peak, scores[w][c])) : new SoundSpan(start, end, scores[w][c]);
                }
            }

            foreach (var ended in open.Keys.Where(c => !above.Contains(c)).ToList())
            {
                Report(ended, open[ended]);
                open.Remove(ended);
            }
        }
    }

    private void Report(int index, SoundSpan span)
    {
        // The last window is zero-padded past the audio; the event ends where the audio does.
        var end = Math.Min(span.End, pipeline.SamplesReceived);
        events.TryWrite(new PipelineEvent.SoundHeard(model!.Classes[index], span.Start, Math.Max(end, span.Start), span.Peak));
    }

    private sealed record WindowBatch(long FirstWindow, int Count, float[] Samples);

    private readonly record struct SoundSpan(long Start, long End, double Peak);
}
