using Microsoft.AspNetCore.Connections;

namespace LockN.Http;

/// <summary>
/// A client that disconnects mid-request is routine (a phone losing its network, a user pressing stop), not a server
/// error: it is logged as one Information line, never with a stack trace, and never reaches the error handler.
/// </summary>
internal static partial class ClientAbort
{
    /// <summary>
    /// Whether <paramref name="failure"/> means the client went away. Kestrel fails a body read as soon as the
    /// connection ends (with a reset, or an early end of the body) and cancels <see cref="HttpContext.RequestAborted"/>
    /// a moment later from the thread pool, so a read failure that may be either waits that moment for the token.
    /// </summary>
    public static async ValueTask<bool> IsClientGoneAsync(HttpContext context, Exception failure)
    {
        if (failure is not (OperationCanceledException or IOException))
        {
            return false;
        }

        if (context.RequestAborted.IsCancellationRequested || failure is ConnectionResetException or ConnectionAbortedException || failure.InnerException is ConnectionResetException)
        {
            return true;
        }

        if (failure is BadHttpRequestException { StatusCode: not StatusCodes.Status400BadRequest })
        {
            return false; // too large or too slow: the client is still there to be told
        }

        try
        {
            await Task.Delay(AbortNoticeTime, context.RequestAborted);
            return false;
        }
        catch (OperationCanceledException)
        {
            return true;
        }
    }

    // Far longer than the thread-pool hop the cancellation takes; paid only by a body that really is malformed.
    private static readonly TimeSpan AbortNoticeTime = TimeSpan.FromMilliseconds(200);

    /// <summary>Add just inside the exception handler, so an abort anywhere below is caught before it.</summary>
    public static WebApplication UseClientAbortLogging(this WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("LockN.Http");
        var time = app.Services.GetRequiredService<TimeProvider>();
        app.Use(async (context, next) =>
        {
            var started = time.GetTimestamp();
            try
            {
                await next(context);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException)
            {
                if (!await IsClientGoneAsync(context, ex))
                {
                    throw;
                }

                context.Abort(); // Kestrel may not have seen it yet, and would try to read the rest of the body
                var elapsedMs = time.GetElapsedTime(started).TotalMilliseconds;
                var how = ex is ConnectionResetException || ex.InnerException is ConnectionResetException ? "connection reset" : "connection closed";
                LogClientGone(logger, context.Request.Method, context.Request.Path, elapsedMs, how);
                if (!context.Response.HasStarted)
                {
                    context.Response.StatusCode = Usage.UsageRecording.ClientClosedRequest;
                }
            }
        });
        return app;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Client went away during {Method} {Path} after {ElapsedMs:0} ms ({How})")]
    private static partial void LogClientGone(ILogger logger, string method, PathString path, double elapsedMs, string how);
}
