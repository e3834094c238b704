using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Serialization;

namespace LockN.Transcription;

internal enum ResponseFormat
{
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

internal sealed record DurationUsage(
    string Type,
    int Seconds)
{
    public static DurationUsage For(double seconds) => new("duration", (int)Math.Ceiling(seconds));
}

internal sealed record JsonTranscription(
    string Text,
    DurationUsage Usage);

internal sealed record VerboseSegment(
    int Id,
    int Seek,
    double Start,
    double End,
    string Text,
    int[] Tokens,
    float Temperature,
    float AvgLogprob,
    float CompressionRatio,
    float NoSpeechProb);

internal sealed record VerboseTranscription(
    string Task,
    string Language,
    double Duration,
    string Text,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<VerboseSegment>? Segments,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<TranscriptWord>? Words,
    DurationUsage Usage);

/// <summary>Turns a <see cref="Transcript"/> into each of OpenAI's response formats.</summary>
internal static class TranscriptFormats
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
