using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LockN.Scheduling;

internal static class SchedulingServiceCollectionExtensions
{
    /// <summary>The clock and the scheduler registry; every model feature adds it (adding it twice is harmless).</summary>
    public static IServiceCollection AddScheduling(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SlotSchedulers>();
        return services;
    }
}
