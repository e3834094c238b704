using System.Text.Json;
using System.Text.Json.Serialization;
using LockN.Transcription;

namespace LockN.Streaming;

/// <summary>The <c>error</c> member of an <c>error</c> event, shaped like OpenAI's realtime errors.</summary>
public sealed record StreamError(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("code")] string Code,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("param")] string? Param)
{
    public static StreamError Invalid(string message, string? param = null, string code = "invalid_value") =>
        new("invalid_request_error", code, message, param);

    public static StreamError Server(string code, string message) => new("server_error", code, message, null);
}

/// <summary>
/// Every event the server sends on a stream (documented in docs/streaming.md). Names follow the and OpenAI's
/// realtime API; each carries a unique <c>event_id</c>.
/// </summary>
public abstract record StreamEvent([property: JsonPropertyName("type"), JsonPropertyOrder(-2)] string Type)
{
    [JsonPropertyName("event_id")]
    [JsonPropertyOrder(-1)]
    public string EventId { get; set; } = "";
}

public sealed record SessionEvent([property: JsonIgnore] string Kind, [property: JsonPropertyName("session")] SessionDescription Session) : StreamEvent(Kind)
{
    public const string Created = "session.created";
    public const string Updated = "session.updated";
}

public sealed record SessionDescription(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("object")] string Kind,
    [property: JsonPropertyName("settings")] StreamSessionSettings Settings);

public sealed record SpeechStarted(
    [property: JsonPropertyName("item_id")] string ItemId,
    [property: JsonPropertyName("audio_start_ms")] long AudioStartMs) : StreamEvent("input_audio_buffer.speech_started");

public sealed record SpeechStopped(
    [property: JsonPropertyName("item_id")] string ItemId,
    [property: JsonPropertyName("audio_end_ms")] long AudioEndMs) : StreamEvent("input_audio_buffer.speech_stopped");

public sealed record BufferCommitted(
    [property: JsonPropertyName("item_id")] string ItemId,
    [property: JsonPropertyName("audio_start_ms")] long AudioStartMs,
    [property: JsonPropertyName("audio_end_ms")] long AudioEndMs) : StreamEvent("input_audio_buffer.committed");

public sealed record TranscriptDelta(
    [property: JsonPropertyName("item_id")] string ItemId,
    [property: JsonPropertyName("text")] string Text) : StreamEvent("transcript.delta");

public sealed record TranscriptCompleted(
    [property: JsonPropertyName("item_id")] string ItemId,
    [property: JsonPropertyName("text")] string Text,
    [property: JsonPropertyName("start")] double Start,
    [property: JsonPropertyName("end")] double End,
    [property: JsonPropertyName("language")] string? Language,
    [property: JsonPropertyName("words"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<TranscriptWord>? Words) : StreamEvent("transcript.completed");

public sealed record SoundDetected(
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("mid")] string Mid,
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("start")] double Start,
    [property: JsonPropertyName("end")] double End,
    [property: JsonPropertyName("peak")] double Peak) : StreamEvent("sound");

public sealed record ErrorEvent([property: JsonPropertyName("error")] StreamError Error) : StreamEvent("error");

public sealed record KeepAlive() : StreamEvent("keepalive");

internal static class StreamJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };
}
