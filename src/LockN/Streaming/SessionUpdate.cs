using System.Text.Json;

namespace LockN.Streaming;

/// <summary>
/// Reads the <c>session</c> object of a <c>session.update</c> (docs/streaming.md): the fields it names change, the
/// others keep their values. Checks against the server's models are the pipeline's (<see cref="AudioPipeline.Apply"/>).
/// </summary>
internal static class SessionUpdate
{
    /// <summary>Applies the fields of a <c>session</c> object; an invalid field is reported with its path and nothing changes.</summary>
    public static (StreamSessionSettings? Settings, StreamError? Error) Apply(StreamSessionSettings current, JsonElement session)
    {
        if (session.ValueKind != JsonValueKind.Object)
        {
            return (null, StreamError.Invalid("'session' must be an object.", "session"));
        }

        try
        {
            var next = current;
            foreach (var property in session.EnumerateObject())
            {
                var value = property.Value;
                next = property.Name switch
                {
                    "model" => next with { Model = RequiredString(value, "session.model") },
                    "language" => next with { Language = OptionalString(value, "session.language") is { Length: > 0 } language ? language.ToLowerInvariant() : null },
                    "prompt" => next with { Prompt = OptionalString(value, "session.prompt") },
                    "input_audio_format" => next with { InputAudioFormat = ApplyFormat(next.InputAudioFormat, value) },
                    "turn_detection" => next with { TurnDetection = value.ValueKind == JsonValueKind.Null ? null : ApplyTurnDetection(next.TurnDetection, value) },
                    "partial_interval_ms" => next with { PartialIntervalMs = Int(value, "session.partial_interval_ms", 0, 60_000) },
                    "word_timestamps" => next with { WordTimestamps = Bool(value, "session.word_timestamps") },
                    "classify" => next with { Classify = Bool(value, "session.classify") },
                    "classify_threshold" => next with { ClassifyThreshold = Number(value, "session.classify_threshold", 0, 1) },
                    "type" or "id" or "object" => next,
                    _ => throw new InvalidSettingException($"Unknown session field '{property.Name}'.", $"session.{property.Name}"),
                };
            }

            return (next, null);
        }
        catch (InvalidSettingException ex)
        {
            return (null, StreamError.Invalid(ex.Message, ex.Param));
        }
    }

    private static InputAudioFormat ApplyFormat(InputAudioFormat current, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.String)
        {
            // OpenAI's realtime API names the format as one string; "pcm16" is 16-bit mono at the current rate.
            return RequiredString(value, "session.input_audio_format") switch
            {
                "pcm16" or "pcm_s16le" => current with { Encoding = "pcm_s16le" },
                "pcm_f32le" => current with { Encoding = "pcm_f32le" },
                var other => throw new InvalidSettingException($"Unsupported input_audio_format '{other}': use pcm_s16le or pcm_f32le.", "session.input_audio_format"),
            };
        }

        RequireObject(value, "session.input_audio_format");
        var format = current;
        foreach (var property in value.EnumerateObject())
        {
            var param = $"session.input_audio_format.{property.Name}";
            format = property.Name switch
            {
                "encoding" => RequiredString(property.Value, param) switch
                {
                    "pcm_s16le" or "pcm16" => format with { Encoding = "pcm_s16le" },
                    "pcm_f32le" => format with { Encoding = "pcm_f32le" },
                    var other => throw new InvalidSettingException($"Unsupported encoding '{other}': use pcm_s16le or pcm_f32le.", param),
                },
                "sample_rate" => format with { SampleRate = Int(property.Value, param, InputAudioFormat.MinSampleRate, InputAudioFormat.MaxSampleRate) },
                "channels" => format with { Channels = Int(property.Value, param, 1, 8) },
                _ => throw new InvalidSettingException($"Unknown field '{property.Name}'.", param),
            };
        }

        return format;
    }

    private static TurnDetection ApplyTurnDetection(TurnDetection? current, JsonElement value)
    {
        RequireObject(value, "session.turn_detection");
        var turn = current ?? StreamSessionSettings.Default("").TurnDetection!;
        foreach (var property in value.EnumerateObject())
        {
            var param = $"session.turn_detection.{property.Name}";
            turn = property.Name switch
            {
                "type" => RequiredString(property.Value, param) == "server_vad"
                    ? turn
                    : throw new InvalidSettingException("The only turn_detection type is 'server_vad' (or turn_detection: null to commit by hand).", param),
                "threshold" => turn with { Threshold = Number(property.Value, param, 0.05, 0.95) },
                "silence_duration_ms" => turn with { SilenceDurationMs = Int(property.Value, param, 100, 10_000) },
                "prefix_padding_ms" => turn with { PrefixPaddingMs = Int(property.Value, param, 0, 2_000) },
                "min_speech_duration_ms" => turn with { MinSpeechDurationMs = Int(property.Value, param, 0, 5_000) },
                _ => throw new InvalidSettingException($"Unknown field '{property.Name}'.", param),
            };
        }

        return turn;
    }

    private static void RequireObject(JsonElement value, string param)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidSettingException($"'{param}' must be an object.", param);
        }
    }

    private static string RequiredString(JsonElement value, string param) =>
        value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw new InvalidSettingException($"'{param}' must be a non-empty string.", param);

    private static string? OptionalString(JsonElement value, string param) => value.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.String => value.GetString(),
        _ => throw new InvalidSettingException($"'{param}' must be a string or null.", param),
    };

    private static bool Bool(JsonElement value, string param) => value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new InvalidSettingException($"'{param}' must be true or false.", param),
    };

    private static int Int(JsonElement value, string param, int min, int max) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) && number >= min && number <= max
            ? number
            : throw new InvalidSettingException($"'{param}' must be a whole number from {min} to {max}.", param);

    private static double Number(JsonElement value, string param, double min, double max) =>
        value.ValueKind == JsonValueKind.Number && value.GetDouble() is var number && number >= min && number <= max
            ? number
            : throw new InvalidSettingException($"'{param}' must be a number from {min} to {max}.", param);

    private sealed class InvalidSettingException(string message, string param) : Exception(message)
    {
        public string Param { get; } = param;
    }
}
