namespace LockN.Http;

/// <summary>The one place that builds the OpenAI error body: <c>{"error":{"message","type","param","code"}}</c>.</summary>
internal sealed record OpenAiError(
    string Message,
    string Type,
    string? Param,
    string? Code);

internal sealed record OpenAiErrorBody(OpenAiError Error);

/// <summary>An expected failure with its HTTP status, ready to be written as an OpenAI error.</summary>
internal sealed record ApiError(int StatusCode, string Message, string Type, string? Param, string? Code)
{
    /// <summary>Seconds the client should wait before retrying (429, 503), sent as Retry-After.</summary>
    public int? RetryAfterSeconds { get; init; }

    public static ApiError BadRequest(string message, string? param = null, string? code = null) =>
        new(StatusCodes.Status400BadRequest, message, "invalid_request_error", param, code);

    public static ApiError ModelNotFound(string model) =>
        new(StatusCodes.Status404NotFound,
            $"The model '{model}' does not exist or is not loaded. GET /v1/models lists the available models.",
            "invalid_request_error", "model", "model_not_found");

    /// <param name="param">The form field that is too large (<c>file</c> of an upload); null for a whole JSON body.</param>
    public static ApiError TooLarge(string message, string? param) =>
        new(StatusCodes.Status413PayloadTooLarge, message, "invalid_request_error", param, "payload_too_large");

    public static ApiError RequestTimeout(string message) =>
        new(StatusCodes.Status408RequestTimeout, message, "invalid_request_error", null, "request_timeout");

    public static ApiError UnsupportedMedia(string message, string? param = "file") =>
        new(StatusCodes.Status415UnsupportedMediaType, message, "invalid_request_error", param, "unsupported_media_type");

    public static ApiError QueueFull(string model, int retryAfterSeconds) =>
        new(StatusCodes.Status429TooManyRequests,
            $"The queue for model '{model}' is full. Retry after {retryAfterSeconds} s.",
            "rate_limit_error", null, "queue_full")
        { RetryAfterSeconds = retryAfterSeconds };

    public static ApiError DeadlineExceeded(string model, TimeSpan waited) =>
        new(StatusCodes.Status503ServiceUnavailable,
            $"No slot of model '{model}' became free within {waited.TotalSeconds:0.#} s. Retry later.",
            "server_error", null, "deadline_exceeded")
        { RetryAfterSeconds = 1 };

    public static ApiError Unavailable(string message, string? code = "service_unavailable") =>
        new(StatusCodes.Status503ServiceUnavailable, message, "server_error", null, code);

    public static ApiError MissingApiKey() =>
        new(StatusCodes.Status401Unauthorized,
            "You didn't provide an API key. Send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
            "invalid_request_error", null, "missing_api_key");

    public static ApiError InvalidApiKey(string message) =>
        new(StatusCodes.Status401Unauthorized, message, "invalid_request_error", null, "invalid_api_key");

    public static ApiError MissingScope(string scope) =>
        new(StatusCodes.Status403Forbidden, $"This API key lacks the '{scope}' scope needed here.", "permission_error", null, "insufficient_scope");

    public static ApiError TooManyFailedAttempts(TimeSpan retryAfter) =>
        new(StatusCodes.Status429TooManyRequests,
            "Too many failed authentication attempts from this address. Retry later.", "rate_limit_error", null, "too_many_failed_attempts")
        { RetryAfterSeconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)) };

    public static ApiError RateLimited(string message, TimeSpan? retryAfter) =>
        new(StatusCodes.Status429TooManyRequests, message, "rate_limit_error", null, "rate_limit_exceeded")
        { RetryAfterSeconds = Math.Max(1, (int)Math.Ceiling((retryAfter ?? TimeSpan.FromSeconds(1)).TotalSeconds)) };

    public static ApiError Internal(string message) =>
        new(StatusCodes.Status500InternalServerError, message, "server_error", null, "internal_error");

    public IResult ToResult() => new OpenAiErrorResult(this);

    public OpenAiErrorBody ToBody() => new(new OpenAiError(Message, Type, Param, Code));
}

/// <summary>Writes an <see cref="ApiError"/> with its status and Retry-After header.</summary>
internal sealed class OpenAiErrorResult(ApiError error) : IResult, IStatusCodeHttpResult
{
    public ApiError Error { get; } = error;

    public int? StatusCode => Error.StatusCode;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = Error.StatusCode;
        if (Error.RetryAfterSeconds is { } retryAfter)
        {
            httpContext.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return httpContext.Response.WriteAsJsonAsync(Error.ToBody(), LockNJson.Context.OpenAiErrorBody, cancellationToken: httpContext.RequestAborted);
    }
}
