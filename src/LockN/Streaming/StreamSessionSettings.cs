using System.Text.Json.Serialization;

namespace LockN.Streaming;

internal enum PcmEncoding
{
    S16Le,
    F32Le,
}

/// <summary>How the client's audio is laid out: raw little-endian PCM, interleaved when there are several channels.</summary>
internal sealed record InputAudioFormat(
    string Encoding,
    int SampleRate,
    int Channels)
{
    public const int MinSampleRate = 8000;
    public const int MaxSampleRate = 48000;

    [JsonIgnore]
    public PcmEncoding Pcm => Encoding == "pcm_f32le" ? PcmEncoding.F32Le : PcmEncoding.S16Le;

    [JsonIgnore]
    public int BytesPerFrame => (Pcm == PcmEncoding.F32Le ? 4 : 2) * Channels;
}

/// <summary>Server-side voice activity detection (Silero VAD) that cuts the audio into utterances.</summary>
internal sealed record TurnDetection(
    string Type,
    double Threshold,
    int SilenceDurationMs,
    int PrefixPaddingMs,
    int MinSpeechDurationMs);

/// <summary>A stream's settings; <c>session.update</c> changes the fields it names and keeps the others.</summary>
internal sealed record StreamSessionSettings(
    string Model,
    string? Language,
    string? Prompt,
    InputAudioFormat InputAudioFormat,
    TurnDetection? TurnDetection,
    int PartialIntervalMs,
    bool WordTimestamps,
    bool Classify,
    double ClassifyThreshold)
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
