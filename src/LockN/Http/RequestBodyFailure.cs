using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace LockN.Http;

/// <summary>
/// The one translation of Kestrel's body-read failures into what a client is told, in LockN's words: Kestrel's own
/// messages name its settings (<c>MinRequestBodyDataRate</c>) and are no use to a client.
/// </summary>
internal static class RequestBodyFailure
{
    /// <param name="param">The form field being read when it failed (<c>file</c>); null for a JSON body.</param>
    /// <param name="limitSetting">The configuration key of the body-size limit in force, named in a 413.</param>
    public static ApiError Describe(HttpContext context, BadHttpRequestException failure, string? param = null, string limitSetting = HttpOptions.MaxRequestBodyBytesKey) =>
        failure.StatusCode switch
        {
            StatusCodes.Status413PayloadTooLarge when context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize is { } limit =>
                RequestBodyLimit.TooLarge(context.Request.ContentLength, limit, param, limitSetting),
            StatusCodes.Status413PayloadTooLarge => ApiError.TooLarge("The request body is larger than the server accepts.", param),
            StatusCodes.Status408RequestTimeout => ApiError.RequestTimeout(
                $"The request body arrived too slowly (under {MinBytesPerSecond(context)} bytes per second); send it faster or on a better connection."),
            _ => ApiError.BadRequest("The request body could not be read to its end: it ended before its declared length, or its chunked encoding is malformed.", code: "invalid_body"),
        };

    private static string MinBytesPerSecond(HttpContext context) =>
        context.Features.Get<IHttpMinRequestBodyDataRateFeature>()?.MinDataRate?.BytesPerSecond.ToString("0", System.Globalization.CultureInfo.InvariantCulture) ?? "the minimum";
}
