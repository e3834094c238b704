using System.Threading.Channels;

namespace LockN.Streaming;

/// <summary>
/// Cuts a stream's audio into utterances. With turn detection an utterance runs from where Silero VAD hears speech
/// begin (less the prefix padding) to a little past where it stops; without, from the end of the last utterance to
/// the next commit. An utterance that reaches the maximum length is cut there and, while speech goes on, continues
/// as a new one (Whisper decodes 30 s windows). Not thread-safe: its pipeline calls it under its lock, after
/// appending the same samples to <paramref name="buffer"/>.
/// </summary>
internal sealed class UtteranceSegmenter(
    AudioChunkBuffer buffer,
    SileroVadModel? vadModel,
    string streamId,
    long maxUtteranceSamples,
    ChannelWriter<PipelineEvent> events,
    Action<UtteranceAudio> finished) : IDisposable
{
    // A little audio past the last speech chunk keeps Whisper from clipping the final word.
    private const int StopPadding = SamplePosition.Rate / 5;

    private VoiceActivityDetector? vad;
    private TurnDetection? turnDetection;
    private string? lastItem;
    private long finalisedUpTo;
    private int itemCounter;

    /// <summary>Null: no voice detection, utterances end on commit.</summary>
    public TurnDetection? TurnDetection
    {
        get => turnDetection;
        set
        {
            turnDetection = value;
            if (vad is not null && value is not null)
            {
                vad.Settings = value;
            }
        }
    }

    /// <summary>The utterance in progress; null when none is open.</summary>
    public string? OpenItem { get; private set; }

    /// <summary>Position of the open utterance's first sample.</summary>
    public long OpenStart { get; private set; } = -1;

    /// <summary>Changes whenever an utterance ends, so work on an earlier one is never taken for the current one.</summary>
    public long Version { get; private set; }

    /// <summary>Whether the open utterance is still being spoken (always, without turn detection).</summary>
    public bool Speaking => turnDetection is null || vad?.InSpeech == true;

    /// <summary>Takes the samples just appended to the buffer.</summary>
    public void Write(ReadOnlySpan<float> samples)
    {
        if (turnDetection is not null && vadModel is not null)
        {
            vad ??= new VoiceActivityDetector(vadModel, turnDetection);
            foreach (var transition in vad.Process(samples))
            {
                if (transition.SpeechStarted)
                {
                    var prefix = turnDetection.PrefixPaddingMs * SamplePosition.Rate / 1000;
                    OpenStart = Math.Max(Math.Max(transition.Position - prefix, buffer.Start), finalisedUpTo);
                    OpenItem = NextItemId();
                    events.TryWrite(new PipelineEvent.SpeechStarted(OpenItem, transition.Position));
                }
                else if (OpenItem is not null)
                {
                    events.TryWrite(new PipelineEvent.SpeechStopped(OpenItem, transition.Position));
                    Finish(Math.Min(buffer.End, transition.Position + StopPadding), UtteranceEnd.SpeechStopped);
                }
            }
        }
        else if (OpenItem is null)
        {
            OpenItem = NextItemId();
            OpenStart = Math.Max(finalisedUpTo, buffer.End - samples.Length);
        }

        if (OpenItem is not null && buffer.End - OpenStart >= maxUtteranceSamples)
        {
            var continuing = Speaking;
            Finish(buffer.End, UtteranceEnd.MaxLength);
            if (continuing)
            {
                OpenItem = NextItemId();
                OpenStart = buffer.End;
            }
        }
    }

    /// <summary>Ends the open utterance now, or reports that there is nothing to commit.</summary>
    public void Commit()
    {
        if (OpenItem is null || buffer.End <= OpenStart)
        {
            events.TryWrite(new PipelineEvent.NothingToCommit());
            return;
        }

        if (vad?.ForceStop(buffer.End) is { } stop)
        {
            events.TryWrite(new PipelineEvent.SpeechStopped(OpenItem, stop.Position));
        }

        Finish(buffer.End, UtteranceEnd.Committed);
    }

    /// <summary>The input is over: an utterance still being spoken is finished, not dropped (and has no speech stop).</summary>
    public void EndOfStream()
    {
        if (OpenItem is not null && buffer.End > OpenStart && Speaking)
        {
            vad?.ForceStop(buffer.End);
            Finish(buffer.End, UtteranceEnd.EndOfStream);
        }
    }

    /// <summary>Drops the audio of the open utterance; the next utterance starts after it.</summary>
    public void Clear()
    {
        vad?.ForceStop(buffer.End);
        OpenItem = null;
        OpenStart = -1;
        finalisedUpTo = buffer.End;
        Version++;
    }

    public void Dispose() => vad?.Dispose();

    private void Finish(long end, UtteranceEnd endedBy)
    {
        var start = Math.Max(OpenStart, buffer.Start);
        if (end > start)
        {
            var utterance = new Utterance(OpenItem!, lastItem, start, end, endedBy);
            lastItem = utterance.ItemId;
            events.TryWrite(new PipelineEvent.UtteranceCommitted(utterance));
            finished(new UtteranceAudio(utterance, buffer.Copy(start, end)));
        }

        finalisedUpTo = end;
        OpenItem = null;
        OpenStart = -1;
        Version++;
    }

    private string NextItemId() => $"item_{streamId}_{++itemCounter}";
}
