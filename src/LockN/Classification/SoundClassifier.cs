using System.Text.Json.Serialization;

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

/// <summary>Turns YAMNet's per-window scores into a clip ranking, a timeline and events.</summary>
internal static class SoundClassifier
{
    public static ClassificationResult Summarise(float[][] windows, double durationSeconds, IReadOnlyList<SoundClass> classes, ISet<string> genericLabels, ClassificationQuery query)
    {
        var candidates = classes
            .Where(c => !query.ExcludeGeneric || !genericLabels.Contains(c.Name))
            .Where(c => query.Labels.Count == 0 || query.Labels.Contains(c.Name, StringComparer.OrdinalIgnoreCase))
            .ToList();

        var clip = new double[classes.Count];
        foreach (var window in windows)
        {
            for (var i = 0; i < clip.Length; i++)
            {
                clip[i] = query.Aggregate == ScoreAggregate.Max ? Math.Max(clip[i], window[i]) : clip[i] + (window[i] / windows.Length);
            }
        }

        var labels = Rank(candidates, i => clip[i], query);
        var timeline = query.Timeline
            ? windows.Select((window, w) => new TimelineWindow(Seconds(w * YamnetModel.HopSeconds), Seconds(Math.Min(durationSeconds, (w * YamnetModel.HopSeconds) + YamnetModel.WindowSeconds)), Rank(candidates, i => window[i], query))).ToList()
            : null;
        var events = query.Events ? Events(windows, durationSeconds, candidates, query.EventThreshold) : null;
        return new ClassificationResult(YamnetModel.Id, Seconds(durationSeconds), labels, timeline, events);
    }

    private static List<LabelScore> Rank(List<SoundClass> candidates, Func<int, double> score, ClassificationQuery query) =>
        candidates
            .Select(c => (Class: c, Score: score(c.Index)))
            .Where(x => x.Score >= query.Threshold)
            .OrderByDescending(x => x.Score)
            .Take(query.TopK)
            .Select(x => new LabelScore(x.Class.Name, x.Class.Mid, x.Class.Index, Math.Round(x.Score, 6)))
            .ToList();

    /// <summary>Runs of consecutive windows where one label stays at or above the threshold, as one event each.</summary>
    private static List<SoundEvent> Events(float[][] windows, double durationSeconds, List<SoundClass> candidates, double threshold)
    {
        var events = new List<SoundEvent>();
        foreach (var candidate in candidates)
        {
            var start = -1;
            var peak = 0.0;
            for (var w = 0; w <= windows.Length; w++)
            {
                var score = w < windows.Length ? windows[w][candidate.Index] : 0;
                if (score >= threshold)
                {
                    start = start < 0 ? w : start;
                    peak = Math.Max(peak, score);
                }
                else if (start >= 0)
                {
                    var end = Math.Min(durationSeconds, ((w - 1) * YamnetModel.HopSeconds) + YamnetModel.WindowSeconds);
                    events.Add(new SoundEvent(candidate.Name, Seconds(start * YamnetModel.HopSeconds), Seconds(end), Math.Round(peak, 6)));
                    start = -1;
                    peak = 0;
                }
            }
        }

        return [.. events.OrderBy(e => e.Start).ThenByDescending(e => e.Peak)];
    }

    private static double Seconds(double value) => Math.Round(value, 3);
}
