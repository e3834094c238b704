using LockN.Hosting;
using LockN.Models;
using LockN.Scheduling;

namespace LockN.Transcription;

internal static class TranscriptionServiceCollectionExtensions
{
    public static IServiceCollection AddTranscription(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddScheduling();
        services.AddValidatedOptions<TranscriptionOptions>(configuration, TranscriptionOptions.Section);
        services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<TranscriptionOptions>, NativeRuntimeValidator>();
        services.AddValidatedOptions<ModelDownloadOptions>(configuration, ModelDownloadOptions.Section);
        services.AddSingleton(ModelDirectories.FromConfiguration(configuration));
        services.AddSingleton<DefaultModelSupplier>();
        services.AddSingleton<WhisperModels>();
        services.AddHostedService(sp => sp.GetRequiredService<WhisperModels>());
        return services;
    }
}
