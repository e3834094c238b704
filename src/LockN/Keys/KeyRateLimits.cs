using System.Globalization;
using System.Security.Claims;
using System.Threading.RateLimiting;
using LockN.Http;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.RateLimiting;

namespace LockN.Keys;

/// <summary>
/// Per-key limits through ASP.NET Core's rate-limiting middleware: requests per minute (a sliding window on the
/// injected clock) and requests in flight. Requests without a key are not limited here; authentication refuses
/// them, and the failure throttle limits guessing. Open endpoints (health probes) are not limited either: a probe
/// that happens to carry a key must not spend its quota.
/// </summary>
internal static class KeyRateLimits
{
    public static IServiceCollection AddKeyRateLimits(this IServiceCollection services)
    {
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<TimeProvider>((limiter, time) =>
        {
            limiter.GlobalLimiter = PartitionedRateLimiter.CreateChained(
                PartitionedRateLimiter.Create<HttpContext, string>(context =>
                    LimitedKeyOf(context) is not { } key
                        ? RateLimitPartition.GetNoLimiter("")
                        : RateLimitPartition.Get($"{key}:rpm", _ =>
                            new RequestsPerMinuteLimiter(Limit(context.User, ApiKeyAuthenticationHandler.RequestsPerMinuteClaim), time))),
                PartitionedRateLimiter.Create<HttpContext, string>(context =>
                    LimitedKeyOf(context) is not { } key
                        ? RateLimitPartition.GetNoLimiter("")
                        : RateLimitPartition.GetConcurrencyLimiter($"{key}:concurrent", _ => new ConcurrencyLimiterOptions
                        {
                            PermitLimit = Limit(context.User, ApiKeyAuthenticationHandler.MaxConcurrentClaim),
                            QueueLimit = 0,
                        })));
            limiter.OnRejected = (rejected, cancellationToken) =>
            {
                var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : (TimeSpan?)null;
                var message = retryAfter is null
                    ? "This API key has too many requests in flight. Wait for one to finish."
                    : "This API key is over its requests-per-minute limit.";
                return new ValueTask(ApiError.RateLimited(message, retryAfter).ToResult().ExecuteAsync(rejected.HttpContext));
            };
        });
        return services;
    }

    // API requests only: a console page's session (its own scheme) is not an API call and carries no limits.
    private static string? LimitedKeyOf(HttpContext context) =>
        context.GetEndpoint()?.Metadata.GetMetadata<IAuthorizeData>() is null || context.User.Identity?.AuthenticationType != ApiKeyAuthenticationHandler.SchemeName
            ? null
            : context.User.FindFirst(ApiKeyClaims.KeyId)?.Value;

    private static int Limit(ClaimsPrincipal user, string claim) =>
        int.Parse(user.FindFirst(claim)!.Value, CultureInfo.InvariantCulture);
}
