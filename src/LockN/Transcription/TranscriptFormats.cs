using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Serialization;

namespace LockN.Transcription;

public enum ResponseFormat
{
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

public sealed record DurationUsage(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("seconds")] int Seconds)
{
    public static DurationUsage For(double seconds) => new("duration", (int)Math.Ceiling(seconds));
}

public sealed record JsonTranscription(
    [property: JsonPropertyName("text")] string Text,
    [property: JsonPropertyName("usage")] DurationUsage Usage);

public sealed record VerboseSegment(
    [property: JsonPropertyName("id")] int Id,
    [property: JsonPropertyName("seek")] int Seek,
    [property: JsonPropertyName("start")] double Start,
    [property: JsonPropertyName("end")] double End,
    [property: JsonPropertyName("text")] string Text,
    [property: JsonPropertyName("tokens")] int[] Tokens,
    [property: JsonPropertyName("temperature")] float Temperature,
    [property: JsonPropertyName("avg_logprob")] float AvgLogprob,
    [property: JsonPropertyName("compression_ratio")] float CompressionRatio,
    [property: JsonPropertyName("no_speech_prob")] float NoSpeechProb);

public sealed record VerboseTranscription(
    [property: JsonPropertyName("task")] string Task,
    [property: JsonPropertyName("language")] string Language,
    [property: JsonPropertyName("duration")] double Duration,
    [property: JsonPropertyName("text")] string Text,
    [property: JsonPropertyName("segments"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<VerboseSegment>? Segments,
    [property: JsonPropertyName("words"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<TranscriptWord>? Words,
    [property: JsonPropertyName("usage")] DurationUsage Usage);

/// <summary>Turns a <see cref="Transcript"/> into each of OpenAI's response formats.</summary>
public static class TranscriptFormats
{
    public static bool TryParse(string? value, out ResponseFormat format)
    {
        switch (value ?? "json")
        {
            case "json": format = ResponseFormat.Json; return true;
            case "text": format = ResponseFormat.Text; return true;
            case "srt": format = ResponseFormat.Srt; return true;
            case "vtt": format = ResponseFormat.Vtt; return true;
            case "verbose_json": format = ResponseFormat.VerboseJson; return true;
            default: format = default; return false;
        }
    }

    public static JsonTranscription ToJson(Transcript transcript) => new(transcript.Text, DurationUsage.For(transcript.DurationSeconds));

    public static VerboseTranscription ToVerboseJson(Transcript transcript, bool translate, bool segments, bool words) => new(
        translate ? "translate" : "transcribe",
        transcript.Language,
        Math.Round(transcript.DurationSeconds, 2),
        transcript.Text,
        segments ? transcript.Segments.Select(s => new VerboseSegment(
            s.Id, (int)Math.Round(s.Start * 100), s.Start, s.End, s.Text, s.Tokens, transcript.Temperature,
            s.AvgLogprob, CompressionRatio(s.Text), s.NoSpeechProb)).ToArray() : null,
        words ? transcript.Segments.SelectMany(s => s.Words).ToArray() : null,
        DurationUsage.For(transcript.DurationSeconds));

    public static string ToText(Transcript transcript) => transcript.Text + "\n";

    public static string ToSrt(Transcript transcript)
    {
        var builder = new StringBuilder();
        var index = 1;
        foreach (var segment in transcript.Segments)
        {
            builder.Append(index++).Append('\n')
                .Append(Timestamp(segment.Start, ',')).Append(" --> ").Append(Timestamp(segment.End, ',')).Append('\n')
                .Append(segment.Text.Trim()).Append("\n\n");
        }

        return builder.ToString();
    }

    public static string ToVtt(Transcript transcript)
    {
        var builder = new StringBuilder("WEBVTT\n\n");
        foreach (var segment in transcript.Segments)
        {
            builder.Append(Timestamp(segment.Start, '.')).Append(" --> ").Append(Timestamp(segment.End, '.')).Append('\n')
                .Append(segment.Text.Trim()).Append("\n\n");
        }

        return builder.ToString();
    }

    /// <summary>hh:mm:ss,mmm (SRT) or hh:mm:ss.mmm (WebVTT).</summary>
    public static string Timestamp(double seconds, char separator)
    {
        var time = TimeSpan.FromMilliseconds(Math.Round(Math.Max(0, seconds) * 1000));
        return string.Create(CultureInfo.InvariantCulture, $"{(int)time.TotalHours:00}:{time.Minutes:00}:{time.Seconds:00}{separator}{time.Milliseconds:000}");
    }

    /// <summary>Text bytes over their deflated size, as OpenAI reports it (high values flag repetition loops).</summary>
    public static float CompressionRatio(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length == 0)
        {
            return 0;
        }

        using var compressed = new MemoryStream();
        using (var deflate = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            deflate.Write(bytes);
        }

        return (float)bytes.Length / compressed.Length;
    }
}
