using System.Text.Json.Serialization;
using LockN.Audio;

namespace LockN.Classification;

internal enum ScoreAggregate
{
    Mean,
    Max,
}

/// <summary>What the caller asked to see of the window scores.</summary>
internal sealed record ClassificationQuery
{
    public int TopK { get; init; } = 5;
    public double Threshold { get; init; }
    public ScoreAggregate Aggregate { get; init; } = ScoreAggregate.Mean;
    public bool ExcludeGeneric { get; init; }
    public IReadOnlyList<string> Labels { get; init; } = [];
    public bool Timeline { get; init; }
    public bool Events { get; init; }

    /// <summary>Events need a real threshold; without one a window counts when a label scores at least this.</summary>
    public const double DefaultEventThreshold = 0.3;

    public double EventThreshold => Threshold > 0 ? Threshold : DefaultEventThreshold;
}

internal sealed record LabelScore(
    string Label,
    string Mid,
    int Index,
    double Score);

internal sealed record TimelineWindow(
    double Start,
    double End,
    IReadOnlyList<LabelScore> Labels);

internal sealed record SoundEvent(
    string Label,
    double Start,
    double End,
    double Peak);

internal sealed record ClassificationResult(
    string Model,
    double Duration,
    IReadOnlyList<LabelScore> Labels,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<TimelineWindow>? Timeline,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<SoundEvent>? Events);

/// <summary>
/// Turns YAMNet's per-window scores into a clip ranking, a timeline and events, one window at a time as they are
/// scored: nothing per window is kept but what the answer itself holds, so an hour of audio costs no more memory
/// than a second of it (beyond the timeline, when asked for).
/// </summary>
internal sealed class SoundClassifier
{
    private readonly ClassificationQuery query;
    private readonly List<SoundClass> candidates;
    private readonly double durationSeconds;
    private readonly int windowCount;
    private readonly double[] clip;
    private readonly List<TimelineWindow>? timeline;

    // Per candidate: the first window of the run of windows at or above the event threshold (-1: none open), its peak.
    private readonly int[] runStart;
    private readonly double[] runPeak;
    private readonly List<(SoundEvent Event, int Candidate)>? events;
    private int windowsSeen;

    public SoundClassifier(IReadOnlyList<SoundClass> classes, ISet<string> genericLabels, ClassificationQuery query, long samples, double durationSeconds)
    {
        this.query = query;
        this.durationSeconds = durationSeconds;
        windowCount = YamnetModel.WindowCount(samples);
        candidates = classes
            .Where(c => !query.ExcludeGeneric || !genericLabels.Contains(c.Name))
            .Where(c => query.Labels.Count == 0 || query.Labels.Contains(c.Name, StringComparer.OrdinalIgnoreCase))
            .ToList();
        clip = new double[classes.Count];
        timeline = query.Timeline ? [] : null;
        events = query.Events ? [] : null;
        runStart = new int[candidates.Count];
        runPeak = new double[candidates.Count];
        Array.Fill(runStart, -1);
    }

    /// <summary>Scores <paramref name="audio"/> window batch by window batch and summarises it as <paramref name="query"/> asks.</summary>
    public static ClassificationResult Classify(YamnetModel model, DecodedAudio audio, ISet<string> genericLabels, ClassificationQuery query, CancellationToken cancellationToken)
    {
        var summary = new SoundClassifier(model.Classes, genericLabels, query, audio.Samples.Length, audio.DurationSeconds);
        model.Score(audio.Samples, summary.Add, cancellationToken);
        return summary.Finish();
    }

    /// <summary>Takes the scores of the next window (windows arrive in order).</summary>
    public void Add(int window, ReadOnlySpan<float> scores)
    {
        windowsSeen++;
        for (var i = 0; i < clip.Length; i++)
        {
            clip[i] = query.Aggregate == ScoreAggregate.Max ? Math.Max(clip[i], scores[i]) : clip[i] + (scores[i] / windowCount);
        }

        if (timeline is not null)
        {
            var start = window * YamnetModel.HopSeconds;
            var copy = scores.ToArray();
            timeline.Add(new TimelineWindow(Seconds(start), Seconds(Math.Min(durationSeconds, start + YamnetModel.WindowSeconds)), Rank(i => copy[i])));
        }

        if (events is not null)
        {
            TrackEvents(window, scores);
        }
    }

    public ClassificationResult Finish()
    {
        if (windowsSeen != windowCount)
        {
            throw new InvalidOperationException($"{windowsSeen} of {windowCount} windows were scored.");
        }

        if (events is not null)
        {
            TrackEvents(windowCount, ReadOnlySpan<float>.Empty); // closes every run still open at the end
        }

        var ordered = events?.OrderBy(e => e.Event.Start).ThenByDescending(e => e.Event.Peak).ThenBy(e => e.Candidate).Select(e => e.Event).ToList();
        return new ClassificationResult(YamnetModel.Id, Seconds(durationSeconds), Rank(i => clip[i]), timeline, ordered);
    }

    /// <summary>Runs of consecutive windows where one label stays at or above the threshold, as one event each.</summary>
    private void TrackEvents(int window, ReadOnlySpan<float> scores)
    {
        var threshold = query.EventThreshold;
        for (var c = 0; c < candidates.Count; c++)
        {
            var score = scores.IsEmpty ? 0 : scores[candidates[c].Index];
            if (score >= threshold)
            {
                runStart[c] = runStart[c] < 0 ? window : runStart[c];
                runPeak[c] = Math.Max(runPeak[c], score);
            }
            else if (runStart[c] >= 0)
            {
                var end = Math.Min(durationSeconds, ((window - 1) * YamnetModel.HopSeconds) + YamnetModel.WindowSeconds);
                events!.Add((new SoundEvent(candidates[c].Name, Seconds(runStart[c] * YamnetModel.HopSeconds), Seconds(end), Math.Round(runPeak[c], 6)), c));
                runStart[c] = -1;
                runPeak[c] = 0;
            }
        }
    }

    private List<LabelScore> Rank(Func<int, double> score) =>
        candidates
            .Select(c => (Class: c, Score: score(c.Index)))
            .Where(x => x.Score >= query.Threshold)
            .OrderByDescending(x => x.Score)
            .Take(query.TopK)
            .Select(x => new LabelScore(x.Class.Name, x.Class.Mid, x.Class.Index, Math.Round(x.Score, 6)))
            .ToList();

    private static double Seconds(double value) => Math.Round(value, 3);
}
