using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LockN.Scheduling;

internal static class SchedulingServiceCollectionExtensions
{
    /// <summary>The clock, the scheduler registry and the cores' shares; every model feature adds it (adding it twice is harmless).</summary>
    public static IServiceCollection AddScheduling(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SlotSchedulers>();
        services.TryAddSingleton(sp => CoreShares.FromConfiguration(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IConfiguration>()));
        return services;
    }
}
