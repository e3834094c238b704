namespace LockN.Storage;

public static partial class StorageServiceCollectionExtensions
{
    /// <summary>The database of keys and usage, migrated before the server starts listening.</summary>
    public static IServiceCollection AddStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(_ => LockNDatabase.FromConfiguration(configuration));
        services.AddHostedService<DatabaseMigrator>();
        return services;
    }

    /// <summary>Registered before every other hosted service, so none of them finds an old schema.</summary>
    private sealed partial class DatabaseMigrator(LockNDatabase database, ILogger<DatabaseMigrator> logger) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await database.MigrateAsync(cancellationToken);
            LogReady(logger, database.Description);
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(Level = LogLevel.Information, Message = "Database ready: {Database}")]
        private static partial void LogReady(ILogger logger, string database);
    }
}
