using LockN.Classification;
using LockN.Http;
using LockN.Transcription;

namespace LockN.Streaming;

/// <summary>
/// What an <see cref="AudioPipeline"/> reports, in the order it happened, in the domain's terms: positions are
/// sample positions (<see cref="SamplePosition"/>), failures are <see cref="ApiError"/> values. Each protocol words
/// them as its own events (<see cref="StreamEventMapping"/> for <c>/v1/audio/stream</c>).
/// </summary>
internal abstract record PipelineEvent
{
    /// <summary>Voice detection heard speech begin at <paramref name="Position"/>; <paramref name="ItemId"/> is the utterance it opens.</summary>
    internal sealed record SpeechStarted(string ItemId, long Position) : PipelineEvent;

    /// <summary>Voice detection heard the speech of <paramref name="ItemId"/> end at <paramref name="Position"/>.</summary>
    internal sealed record SpeechStopped(string ItemId, long Position) : PipelineEvent;

    /// <summary>An utterance was finished (for whatever reason) and queued for transcription.</summary>
    internal sealed record UtteranceCommitted(Utterance Utterance) : PipelineEvent;

    /// <summary>A commit found no audio since the last utterance.</summary>
    internal sealed record NothingToCommit : PipelineEvent;

    /// <summary>
    /// The whole hypothesis so far for the utterance in progress (empty when Whisper heard no words yet); a later
    /// one replaces it, and may revise it. Never sent after the utterance was committed.
    /// </summary>
    internal sealed record PartialTranscript(string ItemId, string Text) : PipelineEvent
    {
        /// <summary>
        /// The text to append for a protocol whose deltas only append, given what it has sent of this item so far;
        /// null when this hypothesis revised that text (the final transcript settles it).
        /// </summary>
        public string? AppendedTo(string sent) => Text.StartsWith(sent, StringComparison.Ordinal) ? Text[sent.Length..] : null;
    }

    /// <summary>The final transcript of an utterance; word times (with word timestamps on) are seconds of the stream.</summary>
    internal sealed record UtteranceTranscribed(Utterance Utterance, string Text, string? Language, IReadOnlyList<TranscriptWord>? Words) : PipelineEvent;

    /// <summary>The utterance got no Whisper slot (queue full or deadline passed) and has no transcript.</summary>
    internal sealed record UtteranceRefused(Utterance Utterance, ApiError Refusal) : PipelineEvent;

    /// <summary>Whisper failed on the utterance (e.g. its worker crashed).</summary>
    internal sealed record UtteranceFailed(Utterance Utterance, string Reason) : PipelineEvent;

    /// <summary>A run of YAMNet windows in [<paramref name="Start"/>, <paramref name="End"/>) in which <paramref name="Sound"/> scored above the threshold.</summary>
    internal sealed record SoundHeard(SoundClass Sound, long Start, long End, double Peak) : PipelineEvent;

    /// <summary>The audio in [<paramref name="Start"/>, <paramref name="End"/>) was not classified: YAMNet had no slot.</summary>
    internal sealed record SoundSkipped(long Start, long End, ApiError Refusal) : PipelineEvent;

    /// <summary>More than <paramref name="Limit"/> of audio is waiting for the models; the pipeline takes no more audio.</summary>
    internal sealed record BacklogExceeded(TimeSpan Limit) : PipelineEvent;
}
