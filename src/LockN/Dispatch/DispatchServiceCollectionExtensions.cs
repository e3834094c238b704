using LockN.Hosting;
using LockN.Scheduling;
using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

internal static class DispatchServiceCollectionExtensions
{
    /// <summary>The backends (URL ones from configuration and the database, managed llama-servers), their HTTP client, health checks and supervision.</summary>
    public static IServiceCollection AddDispatch(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddScheduling();
        services.AddValidatedOptions<DispatchOptions>(configuration, DispatchOptions.Section);
        services.AddSingleton<IValidateOptions<DispatchOptions>, DispatchOptionsValidator>();
        services.AddSingleton<ProcessLauncher>();
        services.AddSingleton<BackendRegistry>();
        services.AddSingleton<ManagedServerSupervisor>();
        services.AddHostedService(sp => sp.GetRequiredService<ManagedServerSupervisor>());
        services.AddSingleton<BackendStore>();
        services.AddHostedService(sp => sp.GetRequiredService<BackendStore>());
        services.AddSingleton<UpstreamClient>();
        services.AddSingleton<BackendHealthChecker>();
        services.AddHostedService(sp => sp.GetRequiredService<BackendHealthChecker>());
        return services;
    }
}
