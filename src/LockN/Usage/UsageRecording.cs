using LockN.Keys;
using LockN.Storage;

namespace LockN.Usage;

/// <summary>The middleware that puts every <c>/v1/</c> request in the usage ledger once its response is done.</summary>
internal static class UsageRecording
{
    /// <summary>The status recorded for a request whose client went away first (nginx's "client closed request").</summary>
    public const int ClientClosedRequest = 499;

    /// <summary>Add after authentication, so the key is known, and inside the error handling, so errors are seen as sent.</summary>
    public static IApplicationBuilder UseUsageRecording(this IApplicationBuilder app)
    {
        var recorder = app.ApplicationServices.GetRequiredService<UsageRecorder>();
        var time = app.ApplicationServices.GetRequiredService<TimeProvider>();
        if (!app.ApplicationServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<UsageOptions>>().Value.Enabled)
        {
            return app;
        }

        return app.Use(async (context, next) =>
        {
            if (!context.Request.Path.StartsWithSegments("/v1", StringComparison.OrdinalIgnoreCase))
            {
                await next(context);
                return;
            }

            var started = time.GetTimestamp();
            var usage = UsageFeature.For(context);
            var failed = false;
            try
            {
                await next(context);
            }
            catch
            {
                failed = true;
                throw;
            }
            finally
            {
                recorder.TryRecord(Describe(context, usage, recorder.Node, failed, time.GetUtcNow(), time.GetElapsedTime(started)));
            }
        });
    }

    private static UsageRecord Describe(HttpContext context, UsageFeature usage, string node, bool failed, DateTimeOffset at, TimeSpan latency)
    {
        var status = context.RequestAborted.IsCancellationRequested || usage.ClientGone ? ClientClosedRequest
            : failed && !context.Response.HasStarted ? StatusCodes.Status500InternalServerError
            : context.Response.StatusCode;

        // The route pattern, not the path, so /v1/models/{id} is one endpoint however many ids are asked for.
        var endpoint = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? context.Request.Path.Value ?? "";
        return new UsageRecord
        {
            At = at.ToUnixTimeMilliseconds(),
            KeyId = Fit(context.User.FindFirst(ApiKeyClaims.KeyId)?.Value, 40),
            Endpoint = Fit(endpoint, 100)!,
            Model = Fit(usage.Model, 200),
            AudioSeconds = usage.AudioSeconds,
            TokensIn = usage.TokensIn,
            TokensOut = usage.TokensOut,
            StatusCode = status,
            LatencyMs = latency.TotalMilliseconds,
            Node = Fit(node, 100)!,
        };
    }

    // A value longer than its column would make the database refuse the whole batch.
    private static string? Fit(string? value, int length) => value is { } text && text.Length > length ? text[..length] : value;
}
