using LockN.Http;

namespace LockN.Streaming;

/// <summary>How the <c>/v1/audio/stream</c> protocol words the pipeline's events and errors (docs/streaming.md).</summary>
internal static class StreamEventMapping
{
    /// <summary>The wire event for a pipeline event; null for one this protocol does not send.</summary>
    public static StreamEvent? ToWire(PipelineEvent happened) => happened switch
    {
        PipelineEvent.SpeechStarted e => new SpeechStarted(e.ItemId, SamplePosition.ToMilliseconds(e.Position)),
        PipelineEvent.SpeechStopped e => new SpeechStopped(e.ItemId, SamplePosition.ToMilliseconds(e.Position)),

        // Only a commit is answered; utterances that voice detection or the length limit ends are not announced.
        PipelineEvent.UtteranceCommitted { Utterance: { EndedBy: UtteranceEnd.Committed } u } =>
            new BufferCommitted(u.ItemId, SamplePosition.ToMilliseconds(u.Start), SamplePosition.ToMilliseconds(u.End)),
        PipelineEvent.UtteranceCommitted => null,
        PipelineEvent.NothingToCommit =>
            new ErrorEvent(StreamError.Invalid("Nothing to commit: no audio has arrived since the last utterance.", code: "input_audio_buffer_commit_empty")),
        PipelineEvent.PartialTranscript { Text.Length: 0 } => null,
        PipelineEvent.PartialTranscript e => new TranscriptDelta(e.ItemId, e.Text),
        PipelineEvent.UtteranceTranscribed { Utterance: var u } e =>
            new TranscriptCompleted(u.ItemId, e.Text, Seconds(u.Start), Seconds(u.End), e.Language, e.Words),
        PipelineEvent.UtteranceRefused { Utterance: var u } e =>
            new ErrorEvent(StreamError.Server(e.Refusal.Code!, $"Utterance {u.ItemId} was not transcribed: {e.Refusal.Message}")),
        PipelineEvent.UtteranceFailed { Utterance: var u } e =>
            new ErrorEvent(StreamError.Server("transcription_failed", $"Utterance {u.ItemId} could not be transcribed: {e.Reason}")),
        PipelineEvent.SoundHeard e =>
            new SoundDetected(e.Sound.Name, e.Sound.Mid, e.Sound.Index, Seconds(e.Start), Seconds(e.End), Math.Round(e.Peak, 4)),
        PipelineEvent.SoundSkipped e =>
            new ErrorEvent(StreamError.Server(e.Refusal.Code!, $"Sound classification skipped {SamplePosition.ToSeconds(e.End - e.Start):0.##} s of audio: {e.Refusal.Message}")),
        PipelineEvent.BacklogExceeded => null, // an error and a close, which the session sends (BacklogExceeded below)
        _ => throw new ArgumentOutOfRangeException(nameof(happened), happened.GetType().Name, null),
    };

    /// <summary>The error sent before the stream is closed with 1008.</summary>
    public static StreamError BacklogExceeded(TimeSpan limit) => StreamError.Invalid(
        $"Audio is arriving faster than it can be processed: more than {limit.TotalSeconds:0.#} s are waiting. Send at real time or open fewer streams.",
        code: "backlog_exceeded");

    /// <summary>A refused setting, with its place in the <c>session.update</c> message.</summary>
    public static StreamError RefusedSetting(ApiError refusal) =>
        new(refusal.Type, refusal.Code ?? "invalid_value", refusal.Message, refusal.Param is null ? null : "session." + refusal.Param);

    private static double Seconds(long position) => Math.Round(SamplePosition.ToSeconds(position), 3);
}
