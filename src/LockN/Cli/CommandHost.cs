using System.CommandLine;
using LockN.Hosting;
using LockN.Models;
using LockN.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LockN.Cli;

/// <summary>
/// The composition root of every command but <c>serve</c>: the configuration <c>serve</c> reads (flags over
/// <c>LOCKN_*</c> variables over appsettings.json) and the same <c>AddXxx</c> registrations, with every options
/// record bound and validated as <c>serve</c> does at start-up, so a bad setting is refused in the same one line
/// whichever command reads it. Hosted services are registered but never started: a command uses what it needs.
/// </summary>
internal sealed class CommandHost : IAsyncDisposable
{
    private readonly ServiceProvider services;

    private CommandHost(IConfiguration configuration, ServiceProvider services)
    {
        Configuration = configuration;
        this.services = services;
    }

    public IConfiguration Configuration { get; }

    public TimeProvider Time => Get<TimeProvider>();

    public T Get<T>()
        where T : notnull => services.GetRequiredService<T>();

    public T Options<T>()
        where T : class => Get<IOptions<T>>().Value;

    public static Option<string?> DataOption() =>
        new("--data") { Description = "Data directory: keys and the usage ledger (env LOCKN_DATA; default ./data)" };

    public static Option<string?> ModelsOption() =>
        new("--models") { Description = "Model directories searched recursively, ';'-separated; pulls go to the first (env LOCKN_MODELS)" };

    /// <summary>
    /// Builds the services <paramref name="addFeatures"/> registers from the configuration with
    /// <paramref name="overrides"/> (the command's flags) on top, then runs <paramref name="command"/> with them.
    /// A bad setting is one line on stderr and exit code 2, as from <c>serve</c>.
    /// </summary>
    public static async Task<int> RunAsync(IDictionary<string, string?> overrides, Action<IServiceCollection, IConfiguration> addFeatures, Func<CommandHost, Task<int>> command)
    {
        var (host, problem) = Build(overrides, addFeatures);
        if (host is null)
        {
            await Console.Error.WriteLineAsync($"lockn: invalid configuration: {problem}");
            return 2;
        }

        await using (host)
        {
            return await command(host);
        }
    }

    internal static (CommandHost? Host, string? Problem) Build(IDictionary<string, string?> overrides, Action<IServiceCollection, IConfiguration> addFeatures)
    {
        var configuration = LockNConfiguration.Build(overrides);
        var collection = new ServiceCollection();
        collection.AddSingleton(configuration);
        collection.AddLogging(); // no providers: a command speaks on stdout and stderr, not through logs
        collection.AddSingleton(TimeProvider.System);
        addFeatures(collection, configuration);
        collection.TryAddSingleton(ModelDirectories.FromConfiguration(configuration));
        var provider = collection.BuildServiceProvider();
        try
        {
            ValidatedOptions.ValidateNow(provider);
            if (collection.Any(d => d.ServiceType == typeof(LockNDatabase)))
            {
                try
                {
                    // Reads the Db connection string: a bad one is a bad setting too, found before any work starts.
                    provider.GetRequiredService<LockNDatabase>();
                }
                catch (InvalidOperationException ex)
                {
                    provider.Dispose();
                    return (null, ex.Message);
                }
            }

            return (new CommandHost(configuration, provider), null);
        }
        catch (Exception ex) when (ValidatedOptions.Describe(ex) is { } problem)
        {
            provider.Dispose();
            return (null, problem);
        }
    }

    /// <summary>The configured database (LOCKN_DB, or SQLite in the data directory), migrated as serve does at start-up.</summary>
    public async Task<LockNDatabase> OpenDatabaseAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(LockNConfiguration.DataDirectory(Configuration));
        var database = Get<LockNDatabase>();
        await database.MigrateAsync(cancellationToken);
        return database;
    }

    public ValueTask DisposeAsync() => services.DisposeAsync();
}
