using System.Text.Json.Serialization;

namespace LockN.Streaming;

public enum PcmEncoding
{
    S16Le,
    F32Le,
}

/// <summary>How the client's audio is laid out: raw little-endian PCM, interleaved when there are several channels.</summary>
public sealed record InputAudioFormat(
    [property: JsonPropertyName("encoding")] string Encoding,
    [property: JsonPropertyName("sample_rate")] int SampleRate,
    [property: JsonPropertyName("channels")] int Channels)
{
    public const int MinSampleRate = 8000;
    public const int MaxSampleRate = 48000;

    [JsonIgnore]
    public PcmEncoding Pcm => Encoding == "pcm_f32le" ? PcmEncoding.F32Le : PcmEncoding.S16Le;

    [JsonIgnore]
    public int BytesPerFrame => (Pcm == PcmEncoding.F32Le ? 4 : 2) * Channels;
}

/// <summary>Server-side voice activity detection (Silero VAD) that cuts the audio into utterances.</summary>
public sealed record TurnDetection(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("threshold")] double Threshold,
    [property: JsonPropertyName("silence_duration_ms")] int SilenceDurationMs,
    [property: JsonPropertyName("prefix_padding_ms")] int PrefixPaddingMs,
    [property: JsonPropertyName("min_speech_duration_ms")] int MinSpeechDurationMs);

/// <summary>A stream's settings; <c>session.update</c> changes the fields it names and keeps the others.</summary>
public sealed record StreamSessionSettings(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("language")] string? Language,
    [property: JsonPropertyName("prompt")] string? Prompt,
    [property: JsonPropertyName("input_audio_format")] InputAudioFormat InputAudioFormat,
    [property: JsonPropertyName("turn_detection")] TurnDetection? TurnDetection,
    [property: JsonPropertyName("partial_interval_ms")] int PartialIntervalMs,
    [property: JsonPropertyName("word_timestamps")] bool WordTimestamps,
    [property: JsonPropertyName("classify")] bool Classify,
    [property: JsonPropertyName("classify_threshold")] double ClassifyThreshold)
{
    public static StreamSessionSettings Default(string model) => new(
        model,
        Language: null,
        Prompt: null,
        new InputAudioFormat("pcm_s16le", 16000, 1),
        new TurnDetection("server_vad", 0.5, 500, 300, 250),
        PartialIntervalMs: 1000,
        WordTimestamps: false,
        Classify: false,
        ClassifyThreshold: 0.3);
}
