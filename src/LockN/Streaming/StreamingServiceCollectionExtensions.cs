using LockN.Hosting;

namespace LockN.Streaming;

internal static class StreamingServiceCollectionExtensions
{
    public static IServiceCollection AddStreaming(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<StreamingOptions>(configuration, StreamingOptions.Section);
        services.AddSingleton<StreamLimits>();
        services.AddSingleton<AudioPipelineFactory>();
        services.AddSingleton<SileroVadHost>();
        services.AddHostedService(sp => sp.GetRequiredService<SileroVadHost>());
        return services;
    }
}
