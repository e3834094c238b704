using Microsoft.AspNetCore.Diagnostics;

namespace LockN.Http;

/// <summary>
/// Makes every failure that escapes an endpoint (unknown route, wrong method, oversized body, a bug) an
/// OpenAI-shaped JSON error instead of an empty response or an exception page. Status pages are OpenAI-shaped only
/// under the JSON APIs (<c>/v1</c>, <c>/admin</c>, <c>/health</c>), so other paths can have pages of their own.
/// </summary>
internal static partial class OpenAiErrorHandling
{
    public static IServiceCollection AddOpenAiErrors(this IServiceCollection services) =>
        services.AddProblemDetails().AddLockNJson();

    /// <summary>The paths that speak OpenAI-shaped JSON, errors included.</summary>
    public static bool IsJsonApi(PathString path) =>
        path.StartsWithSegments("/v1") || path.StartsWithSegments("/admin") || path.StartsWithSegments("/health");

    public static WebApplication UseOpenAiErrors(this WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("LockN.Http");
        app.UseExceptionHandler(errorApp => errorApp.Run(async context =>
        {
            var exception = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            var error = exception switch
            {
                BadHttpRequestException bad => RequestBodyFailure.Describe(context, bad),
                _ => ApiError.Internal("The server failed to process the request. The error has been logged."),
            };
            if (error.StatusCode >= 500)
            {
                LogUnhandled(logger, context.Request.Method, context.Request.Path, exception);
            }

            await error.ToResult().ExecuteAsync(context);
        }));
        app.UseClientAbortLogging();

        app.UseWhen(context => IsJsonApi(context.Request.Path), api => api.UseStatusCodePages(async statusContext =>
        {
            var context = statusContext.HttpContext;
            var error = context.Response.StatusCode switch
            {
                StatusCodes.Status404NotFound => new ApiError(404, $"Unknown route {context.Request.Method} {context.Request.Path}.", "invalid_request_error", null, "not_found"),
                StatusCodes.Status405MethodNotAllowed => new ApiError(405, $"Method {context.Request.Method} is not allowed on {context.Request.Path}.", "invalid_request_error", null, "method_not_allowed"),
                var status => new ApiError(status, $"The request failed with status {status}.", status >= 500 ? "server_error" : "invalid_request_error", null, null),
            };
            await error.ToResult().ExecuteAsync(context);
        }));
        return app;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled exception on {Method} {Path}")]
    private static partial void LogUnhandled(ILogger logger, string method, string path, Exception? exception);
}
