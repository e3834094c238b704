using System.ComponentModel.DataAnnotations;

namespace LockN.Audio;

/// <summary>Settings of the <c>Audio</c> configuration section: limits on what one upload may cost to decode.</summary>
internal sealed record AudioOptions
{
    public const string Section = "Audio";

    /// <summary>Longest accepted input; longer audio is refused with 413 as soon as decoding passes this mark.</summary>
    [Range(1, 86_400)]
    public int MaxDurationSeconds { get; init; } = 3600;

    /// <summary>Wall-clock limit for decoding one file (ffmpeg is killed when it passes).</summary>
    [Range(1, 3600)]
    public int DecodeTimeoutSeconds { get; init; } = 120;

    /// <summary>The ffmpeg executable that decodes every container except WAV.</summary>
    [Required(AllowEmptyStrings = false)]
    public string FfmpegPath { get; init; } = "ffmpeg";
}
