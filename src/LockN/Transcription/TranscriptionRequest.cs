using System.Globalization;
using LockN.Http;

namespace LockN.Transcription;

/// <summary>The validated fields of a transcription or translation request (OpenAI's multipart contract).</summary>
internal sealed record TranscriptionRequest(
    string Model,
    ResponseFormat Format,
    WhisperJob Job,
    bool SegmentTimestamps,
    bool Stream)
{
    public static (TranscriptionRequest? Request, ApiError? Error) Parse(MultipartForm form, bool translate)
    {
        if (form.File is null)
        {
            return Fail("The 'file' field is required: upload the audio as a multipart file part named 'file'.", "file");
        }

        var model = form.Get("model")?.Trim();
        if (string.IsNullOrEmpty(model))
        {
            return Fail("The 'model' field is required (e.g. whisper-1).", "model");
        }

        if (!TranscriptFormats.TryParse(form.Get("response_format"), out var format))
        {
            return Fail($"response_format '{form.Get("response_format")}' is not one of json, text, srt, verbose_json, vtt.", "response_format");
        }

        var temperature = 0f;
        if (form.Get("temperature") is { } temperatureText &&
            (!float.TryParse(temperatureText, NumberStyles.Float, CultureInfo.InvariantCulture, out temperature) || temperature is < 0 or > 1 || float.IsNaN(temperature)))
        {
            return Fail($"temperature '{temperatureText}' must be a number between 0 and 1.", "temperature");
        }

        string? language = null;
        if (!translate && form.Get("language") is { Length: > 0 } languageText)
        {
            language = languageText.Trim().ToLowerInvariant();
            if (language is not { Length: >= 2 and <= 3 } || !language.All(char.IsAsciiLetterLower))
            {
                return Fail($"language '{languageText}' must be an ISO-639-1 code such as 'en'.", "language");
            }
        }

        var granularities = form.GetAll("timestamp_granularities[]").Concat(form.GetAll("timestamp_granularities")).ToArray();
        foreach (var granularity in granularities)
        {
            if (granularity is not ("segment" or "word"))
            {
                return Fail($"timestamp_granularities[] '{granularity}' must be 'segment' or 'word'.", "timestamp_granularities[]");
            }
        }

        if (granularities.Length > 0 && format != ResponseFormat.VerboseJson)
        {
            return Fail("timestamp_granularities[] requires response_format=verbose_json.", "timestamp_granularities[]");
        }

        var stream = false;
        if (form.Get("stream") is { } streamText && !bool.TryParse(streamText, out stream))
        {
            return Fail($"stream '{streamText}' must be true or false.", "stream");
        }

        if (stream && format is not (ResponseFormat.Json or ResponseFormat.Text))
        {
            return Fail("stream=true is supported with response_format json or text.", "stream");
        }

        var prompt = form.Get("prompt");
        var job = new WhisperJob
        {
            Language = language,
            Prompt = string.IsNullOrWhiteSpace(prompt) ? null : prompt,
            Temperature = temperature,
            Translate = translate,
            WordTimestamps = granularities.Contains("word"),
        };
        var segments = granularities.Length == 0 || granularities.Contains("segment");
        return (new TranscriptionRequest(model, format, job, segments, stream), null);
    }

    private static (TranscriptionRequest?, ApiError?) Fail(string message, string param) => (null, ApiError.BadRequest(message, param));
}
