using System.Globalization;
using LockN.Http;

namespace LockN.Classification;

/// <summary>The validated fields of POST /v1/audio/classifications.</summary>
internal static class ClassificationRequest
{
    public static (ClassificationQuery? Query, ApiError? Error) Parse(MultipartForm form, IReadOnlyList<SoundClass> classes)
    {
        if (form.File is null)
        {
            return Fail("The 'file' field is required: upload the audio as a multipart file part named 'file'.", "file");
        }

        if (form.Get("model") is { Length: > 0 } model && !model.Trim().Equals(YamnetModel.Id, StringComparison.OrdinalIgnoreCase))
        {
            return (null, ApiError.ModelNotFound(model));
        }

        var topK = 5;
        if (form.Get("top_k") is { } topKText && (!int.TryParse(topKText, NumberStyles.Integer, CultureInfo.InvariantCulture, out topK) || topK < 1 || topK > classes.Count))
        {
            return Fail($"top_k '{topKText}' must be a whole number from 1 to {classes.Count}.", "top_k");
        }

        var threshold = 0.0;
        if (form.Get("threshold") is { } thresholdText &&
            (!double.TryParse(thresholdText, NumberStyles.Float, CultureInfo.InvariantCulture, out threshold) || double.IsNaN(threshold) || threshold is < 0 or > 1))
        {
            return Fail($"threshold '{thresholdText}' must be a number between 0 and 1.", "threshold");
        }

        var aggregate = ScoreAggregate.Mean;
        if (form.Get("aggregate") is { } aggregateText)
        {
            switch (aggregateText.Trim().ToLowerInvariant())
            {
                case "mean": aggregate = ScoreAggregate.Mean; break;
                case "max": aggregate = ScoreAggregate.Max; break;
                default: return Fail($"aggregate '{aggregateText}' must be 'mean' or 'max'.", "aggregate");
            }
        }

        var labels = form.GetAll("labels[]").Concat(form.GetAll("labels")).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        foreach (var label in labels)
        {
            if (!classes.Any(c => c.Name.Equals(label, StringComparison.OrdinalIgnoreCase)))
            {
                return Fail($"labels[] '{label}' is not a YAMNet class name (see yamnet_class_map.csv, e.g. 'Dog', 'Siren').", "labels[]");
            }
        }

        var flags = new Dictionary<string, bool>();
        foreach (var name in (string[])["exclude_generic", "timeline", "events"])
        {
            var text = form.Get(name);
            if (text is null)
            {
                flags[name] = false;
            }
            else if (bool.TryParse(text.Trim(), out var value))
            {
                flags[name] = value;
            }
            else
            {
                return Fail($"{name} '{text}' must be true or false.", name);
            }
        }

        return (new ClassificationQuery
        {
            TopK = topK,
            Threshold = threshold,
            Aggregate = aggregate,
            ExcludeGeneric = flags["exclude_generic"],
            Labels = labels,
            Timeline = flags["timeline"],
            Events = flags["events"],
        }, null);
    }

    private static (ClassificationQuery?, ApiError?) Fail(string message, string param) => (null, ApiError.BadRequest(message, param));
}
