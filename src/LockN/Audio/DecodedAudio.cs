namespace LockN.Audio;

/// <summary>
/// Audio ready for the models: 16 kHz mono float samples in [-1, 1], plus what the source was. Owns its samples:
/// dispose it when the request is done (a spooled input's file is deleted then).
/// </summary>
internal sealed record DecodedAudio : IDisposable
{
    public const int SampleRate = 16_000;

    public required DecodedSamples Samples { get; init; }

    /// <summary>Frames in the source at its own rate; the duration is measured on these, not on the resampled output.</summary>
    public required long SourceFrames { get; init; }

    public required int SourceSampleRate { get; init; }

    public required int SourceChannels { get; init; }

    /// <summary>The container as sniffed from the first bytes, e.g. <c>wav</c>, <c>mp3</c>, <c>ogg</c>.</summary>
    public required string Container { get; init; }

    public double DurationSeconds => (double)SourceFrames / SourceSampleRate;

    public void Dispose() => Samples.Dispose();
}

/// <summary>Why an input could not be decoded; each maps to one HTTP status. Public: a test theory names its values.</summary>
public enum AudioDecodeError
{
    /// <summary>No bytes, or a container without a single sample.</summary>
    Empty,

    /// <summary>A known container that is truncated, lies in its header or fails to decode.</summary>
    Malformed,

    /// <summary>Not audio in a format LockN reads.</summary>
    UnsupportedMedia,

    /// <summary>Longer than <see cref="AudioOptions.MaxDurationSeconds"/>.</summary>
    TooLong,

    /// <summary>Decoding ran past <see cref="AudioOptions.DecodeTimeoutSeconds"/>.</summary>
    TimedOut,

    /// <summary>ffmpeg is needed for this container but cannot be started.</summary>
    DecoderUnavailable,

    /// <summary>The decoded audio could not be written to the spool folder (a full or read-only disk).</summary>
    SpoolUnavailable,
}

/// <summary>Either decoded audio or an error with a message fit for the API caller.</summary>
internal readonly record struct AudioDecodeResult(DecodedAudio? Audio, AudioDecodeError? Error, string? Message)
{
    public bool Succeeded => Audio is not null;

    public static AudioDecodeResult Success(DecodedAudio audio) => new(audio, null, null);

    public static AudioDecodeResult Failure(AudioDecodeError error, string message) => new(null, error, message);
}
