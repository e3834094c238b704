using LockN.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace LockN.Http;

/// <summary>Applies <see cref="HttpOptions"/> to Kestrel.</summary>
internal static class HttpLimits
{
    public static IServiceCollection AddHttpLimits(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<HttpOptions>(configuration, HttpOptions.Section);
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<HttpOptions>>((kestrel, http) => Apply(kestrel, http.Value));
        return services;
    }

    private static void Apply(KestrelServerOptions kestrel, HttpOptions http)
    {
        kestrel.AddServerHeader = false;
        var limits = kestrel.Limits;
        limits.MaxConcurrentConnections = http.MaxConnections;
        limits.MaxConcurrentUpgradedConnections = http.MaxUpgradedConnections;
        limits.KeepAliveTimeout = TimeSpan.FromSeconds(http.KeepAliveTimeoutSeconds);
        limits.RequestHeadersTimeout = TimeSpan.FromSeconds(http.RequestHeadersTimeoutSeconds);
        limits.MinRequestBodyDataRate = new MinDataRate(http.MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(http.RequestBodyGraceSeconds));
        limits.MinResponseDataRate = new MinDataRate(http.MinResponseBytesPerSecond, TimeSpan.FromSeconds(http.ResponseGraceSeconds));
        limits.MaxRequestBodySize = http.MaxRequestBodyBytes; // endpoints that take more raise it per request (RequestBodyLimit)
    }
}
