using LockN.Hosting;

namespace LockN.Classification;

public static class ClassificationServiceCollectionExtensions
{
    public static IServiceCollection AddClassification(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<ClassificationOptions>(configuration, ClassificationOptions.Section);
        services.AddSingleton<YamnetHost>();
        services.AddHostedService(sp => sp.GetRequiredService<YamnetHost>());
        return services;
    }
}
