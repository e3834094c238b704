using Microsoft.AspNetCore.Http.Features;

namespace LockN.Http;

/// <summary>
/// The one upload-size rule: a body that declares more than the limit is refused at once, and Kestrel is told the
/// limit so a chunked body that grows past it fails too (our 413 in OpenAI's shape, not Kestrel's 30 MB default).
/// </summary>
internal static class RequestBodyLimit
{
    /// <param name="setting">The configuration key of the limit, named in the error so an operator knows what to raise.</param>
    public static ApiError? Apply(HttpContext context, long maxBytes, string? param, string setting)
    {
        if (context.Request.ContentLength > maxBytes)
        {
            return TooLarge(context.Request.ContentLength.Value, maxBytes, param, setting);
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = maxBytes;
        }

        return null;
    }

    public static ApiError TooLarge(long? length, long maxBytes, string? param, string setting) =>
        ApiError.TooLarge(length is { } bytes
            ? $"The request body is {bytes} bytes; the limit is {maxBytes} bytes ({setting})."
            : $"The request body is larger than the limit of {maxBytes} bytes ({setting}).", param);
}
