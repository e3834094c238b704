using LockN.Hosting;

namespace LockN.Audio;

internal static class AudioServiceCollectionExtensions
{
    public static IServiceCollection AddAudioDecoding(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<AudioOptions>(configuration, AudioOptions.Section);
        services.AddSingleton<AudioDecoder>();
        return services;
    }
}
