using LockN.Hosting;
using LockN.Scheduling;
using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

internal static class DispatchServiceCollectionExtensions
{
    /// <summary>The backends of <c>Dispatch:Backends</c>, their HTTP client, and their health checks.</summary>
    public static IServiceCollection AddDispatch(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddScheduling();
        services.AddValidatedOptions<DispatchOptions>(configuration, DispatchOptions.Section);
        services.AddSingleton<IValidateOptions<DispatchOptions>, DispatchOptionsValidator>();
        services.AddSingleton<BackendRegistry>();
        services.AddSingleton<UpstreamClient>();
        services.AddSingleton<BackendHealthChecker>();
        services.AddHostedService(sp => sp.GetRequiredService<BackendHealthChecker>());
        return services;
    }
}
