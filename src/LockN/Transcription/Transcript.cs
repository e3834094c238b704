namespace LockN.Transcription;

/// <summary>What Whisper is asked to do with one piece of audio.</summary>
internal sealed record WhisperJob
{
    /// <summary>ISO-639-1 code, or null to detect the language.</summary>
    public string? Language { get; init; }
    public string? Prompt { get; init; }
    public float Temperature { get; init; }
    public bool Translate { get; init; }
    public bool WordTimestamps { get; init; }

    /// <summary>Threads for this job, at most the worker's own; 0 for all of them (see <see cref="Scheduling.CoreShares"/>).</summary>
    public int Threads { get; init; }
}

internal sealed record TranscriptWord(
    string Word,
    double Start,
    double End,
    float Probability);

/// <summary>One Whisper segment, with times in seconds from the start of the audio.</summary>
internal sealed record TranscriptSegment(
    int Id,
    double Start,
    double End,
    string Text,
    int[] Tokens,
    float AvgLogprob,
    float NoSpeechProb,
    string? Language,
    IReadOnlyList<TranscriptWord> Words);

/// <summary>A finished transcription: the segments plus what the response needs around them.</summary>
internal sealed record Transcript(string ModelId, string Language, double DurationSeconds, IReadOnlyList<TranscriptSegment> Segments, float Temperature)
{
    public string Text => string.Concat(Segments.Select(s => s.Text)).Trim();
}
