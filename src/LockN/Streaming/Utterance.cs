namespace LockN.Streaming;

/// <summary>What ended an utterance.</summary>
internal enum UtteranceEnd
{
    /// <summary>Voice detection heard the speech stop.</summary>
    SpeechStopped,

    /// <summary>The client committed the audio buffer.</summary>
    Committed,

    /// <summary>It reached <c>Streaming:MaxUtteranceSeconds</c>; the speech goes on as the next utterance.</summary>
    MaxLength,

    /// <summary>The input ended with the utterance still open.</summary>
    EndOfStream,
}

/// <summary>
/// One utterance of a stream: the audio in [<paramref name="Start"/>, <paramref name="End"/>) (sample positions),
/// and the utterance before it (null for the first), for protocols that chain items.
/// </summary>
internal sealed record Utterance(string ItemId, string? PreviousItemId, long Start, long End, UtteranceEnd EndedBy)
{
    /// <summary>Seconds of audio sent to the model, for usage.</summary>
    public TimeSpan Duration => SamplePosition.ToTime(End - Start);
}

/// <summary>A finished utterance with its samples, on the way to Whisper.</summary>
internal sealed record UtteranceAudio(Utterance Utterance, float[] Samples);
