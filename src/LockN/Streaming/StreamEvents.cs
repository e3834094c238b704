using System.Text.Json.Serialization;
using LockN.Transcription;

namespace LockN.Streaming;

/// <summary>The <c>error</c> member of an <c>error</c> event, shaped like OpenAI's realtime errors.</summary>
internal sealed record StreamError(
    string Type,
    string Code,
    string Message,
    string? Param)
{
    public static StreamError Invalid(string message, string? param = null, string code = "invalid_value") =>
        new("invalid_request_error", code, message, param);

    public static StreamError Server(string code, string message) => new("server_error", code, message, null);
}

/// <summary>
/// Every event the server sends on a stream (documented in docs/streaming.md). Names follow OpenAI's
/// realtime API; each carries a unique <c>event_id</c>.
/// </summary>
internal abstract record StreamEvent([property: JsonPropertyOrder(-2)] string Type)
{
    [JsonPropertyOrder(-1)]
    public string EventId { get; set; } = "";
}

internal sealed record SessionEvent([property: JsonIgnore] string Kind, SessionDescription Session) : StreamEvent(Kind)
{
    public const string Created = "session.created";
    public const string Updated = "session.updated";
}

internal sealed record SessionDescription(
    string Id,
    string Object,
    StreamSessionSettings Settings);

internal sealed record SpeechStarted(
    string ItemId,
    long AudioStartMs) : StreamEvent("input_audio_buffer.speech_started");

internal sealed record SpeechStopped(
    string ItemId,
    long AudioEndMs) : StreamEvent("input_audio_buffer.speech_stopped");

internal sealed record BufferCommitted(
    string ItemId,
    long AudioStartMs,
    long AudioEndMs) : StreamEvent("input_audio_buffer.committed");

internal sealed record TranscriptDelta(
    string ItemId,
    string Text) : StreamEvent("transcript.delta");

internal sealed record TranscriptCompleted(
    string ItemId,
    string Text,
    double Start,
    double End,
    string? Language,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<TranscriptWord>? Words) : StreamEvent("transcript.completed");

internal sealed record SoundDetected(
    string Label,
    string Mid,
    int Index,
    double Start,
    double End,
    double Peak) : StreamEvent("sound");

internal sealed record ErrorEvent(StreamError Error) : StreamEvent("error");

internal sealed record KeepAlive() : StreamEvent("keepalive");
