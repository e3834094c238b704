using System.ComponentModel.DataAnnotations;

namespace LockN.Models;

/// <summary>Settings of the <c>ModelDownload</c> configuration section (<c>LOCKN_ModelDownload__BaseUrl</c>, ...).</summary>
internal sealed record ModelDownloadOptions
{
    public const string Section = "ModelDownload";
    public const int MaxTimeoutSeconds = 3600;

    /// <summary>Where model files are downloaded from; the file name (<c>ggml-base.en.bin</c>) is appended.</summary>
    [Required, Url(ErrorMessage = "must be an absolute http(s) URL")]
    public string BaseUrl { get; init; } = KnownWhisperModels.DefaultBaseUrl;

    /// <summary>How long connecting, or any single read, may stall before the download fails.</summary>
    [Range(1, MaxTimeoutSeconds)]
    public int TimeoutSeconds { get; init; } = 30;

    public TimeSpan Timeout => TimeSpan.FromSeconds(TimeoutSeconds);

    public static ModelDownloadOptions FromConfiguration(IConfiguration configuration) =>
        configuration.GetSection(Section).Get<ModelDownloadOptions>() ?? new ModelDownloadOptions();
}
