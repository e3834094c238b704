using LockN.Hosting;
using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

public static class DispatchServiceCollectionExtensions
{
    /// <summary>The backends of <c>Dispatch:Backends</c>, their HTTP client, and their health checks.</summary>
    public static IServiceCollection AddDispatch(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<DispatchOptions>(configuration, DispatchOptions.Section);
        services.AddSingleton<IValidateOptions<DispatchOptions>, DispatchOptionsValidator>();
        services.AddSingleton<BackendRegistry>();
        services.AddSingleton<UpstreamClient>();
        services.AddSingleton<BackendHealthChecker>();
        services.AddHostedService(sp => sp.GetRequiredService<BackendHealthChecker>());
        return services;
    }
}
