using System.ComponentModel.DataAnnotations;

namespace LockN.Streaming;

/// <summary>Settings of the <c>Streaming</c> configuration section (GET /v1/audio/stream).</summary>
internal sealed record StreamingOptions
{
    public const string Section = "Streaming";

    /// <summary>Silero VAD model file, found under the model directories.</summary>
    [Required(AllowEmptyStrings = false)]
    public string VadModelFile { get; init; } = "silero_vad.onnx";

    /// <summary>Load Silero VAD when the server starts instead of when the first stream opens (~40 MiB with ONNX Runtime).</summary>
    public bool LoadVadAtStart { get; init; }

    /// <summary>Streams open at once on this node; the next is closed with 1013.</summary>
    [Range(1, 10_000)]
    public int MaxStreams { get; init; } = 32;

    /// <summary>Streams open at once per API key; the next is closed with 1013.</summary>
    [Range(1, 10_000)]
    public int MaxStreamsPerKey { get; init; } = 8;

    /// <summary>A stream that sends nothing for this long is closed.</summary>
    [Range(1, 86_400)]
    public double IdleTimeoutSeconds { get; init; } = 60;

    /// <summary>A keepalive event goes out when nothing else was sent for this long.</summary>
    [Range(0.5, 3600)]
    public double KeepAliveSeconds { get; init; } = 15;

    /// <summary>
    /// Audio received but not yet transcribed or classified. A client that sends faster than the slots keep up
    /// gets an error and close 1008 past this, so memory stays bounded.
    /// </summary>
    [Range(1, 3600)]
    public double MaxBacklogSeconds { get; init; } = 120;

    /// <summary>An utterance this long is finalised even while speech goes on (Whisper decodes 30 s windows).</summary>
    [Range(1, 120)]
    public double MaxUtteranceSeconds { get; init; } = 30;

    /// <summary>Largest message a client may send (a JSON append carries base64 audio).</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxMessageBytes { get; init; } = 4 * 1024 * 1024;
}
