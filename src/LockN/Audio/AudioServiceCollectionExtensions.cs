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

    /// <summary>The server's decoded-audio spool in its data directory (the CLI's in-process commands keep audio in memory).</summary>
    public static IServiceCollection AddAudioSpool(this IServiceCollection services)
    {
        services.AddSingleton<AudioSpool>();
        return services;
    }
}
