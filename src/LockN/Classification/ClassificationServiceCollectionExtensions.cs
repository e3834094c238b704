using LockN.Hosting;
using LockN.Scheduling;

namespace LockN.Classification;

internal static class ClassificationServiceCollectionExtensions
{
    public static IServiceCollection AddClassification(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddScheduling();
        services.AddValidatedOptions<ClassificationOptions>(configuration, ClassificationOptions.Section);
        services.AddSingleton<YamnetHost>();
        services.AddHostedService(sp => sp.GetRequiredService<YamnetHost>());
        return services;
    }
}
