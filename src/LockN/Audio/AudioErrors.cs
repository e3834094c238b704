using LockN.Http;

namespace LockN.Audio;

/// <summary>What a client sees when its audio cannot be decoded, for every endpoint that takes audio.</summary>
internal static class AudioErrors
{
    public static ApiError ToApiError(this AudioDecodeResult result) => result.Error switch
    {
        AudioDecodeError.UnsupportedMedia => ApiError.UnsupportedMedia(result.Message ?? "Unsupported media."),
        AudioDecodeError.TooLong => ApiError.TooLarge(result.Message ?? "The audio is too long.", "file"),
        AudioDecodeError.SpoolUnavailable => ApiError.Unavailable(result.Message ?? "There is no room for the decoded audio.", "spool_unavailable") with { RetryAfterSeconds = 5 },
        AudioDecodeError.DecoderUnavailable => ApiError.Unavailable(result.Message ?? "No audio decoder is available.", "decoder_unavailable"),
        _ => ApiError.BadRequest(result.Message ?? "The audio could not be decoded.", "file", "invalid_audio"),
    };
}
