using LockN.Hosting;
using LockN.Storage;
using Microsoft.Extensions.Options;

namespace LockN.Usage;

internal static class UsageServiceCollectionExtensions
{
    /// <summary>
    /// The usage ledger: its options (<c>Usage</c> section), and the recorder that writes it in the background.
    /// Call after <c>AddStorage</c>, so the schema is migrated before the recorder starts and the recorder is
    /// stopped, and its queue flushed, after the server has finished its last request.
    /// </summary>
    public static IServiceCollection AddUsage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<UsageOptions>(configuration, UsageOptions.Section);
        var node = configuration[UsageOptions.NodeKey] is { Length: > 0 } name ? name : Environment.MachineName;
        services.AddSingleton(sp => new UsageRecorder(
            sp.GetRequiredService<LockNDatabase>(),
            sp.GetRequiredService<IOptions<UsageOptions>>().Value,
            node,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<UsageRecorder>>(),
            Path.Combine(LockNConfiguration.DataDirectory(configuration), UsageJournal.FolderName)));
        services.AddHostedService(sp => sp.GetRequiredService<UsageRecorder>());
        return services;
    }
}
