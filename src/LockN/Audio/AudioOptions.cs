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

    /// <summary>
    /// Decoded audio longer than this is kept in a spool file in the data directory instead of memory (a minute of
    /// 16 kHz samples is 3.75 MiB of memory or disk).
    /// </summary>
    [Range(1, 3600)]
    public int SpoolAfterSeconds { get; init; } = 120;

    /// <summary>
    /// Node-wide budget for decoded audio held in memory by all requests together; an input that finds it spent goes
    /// to a spool file at once, so memory never grows past it whatever the number of uploads.
    /// </summary>
    [Range(16, 65_536)]
    public int MaxDecodedMemoryMiB { get; init; } = 256;

    /// <summary>
    /// Node-wide budget for spool files on disk (8 GiB holds about 36 hours of decoded audio); an upload that finds it
    /// spent is refused with a 503 until current requests finish, so uploads cannot fill the disk.
    /// </summary>
    [Range(64, 1_048_576)]
    public int MaxSpoolMiB { get; init; } = 8192;

    /// <summary>The ffmpeg executable that decodes every container except WAV.</summary>
    [Required(AllowEmptyStrings = false)]
    public string FfmpegPath { get; init; } = "ffmpeg";
}
