using LockN.Hosting;
using LockN.Storage;
using Microsoft.Data.Sqlite;

namespace LockN.Tests.Storage;

/// <summary>The two databases LockN runs on; every storage and usage test runs on each.</summary>
public enum Provider
{
    Sqlite,
    Postgres,
}

/// <summary>
/// An empty database of one provider for one test or fixture: the server settings that point LockN at it, and the
/// <see cref="LockNDatabase"/> to read it directly. Disposing it removes it.
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private readonly PostgresServer? postgres;

    private TestDatabase(Provider provider, string dataDirectory, string? connectionString, PostgresServer? postgres)
    {
        Provider = provider;
        DataDirectory = dataDirectory;
        ConnectionString = connectionString;
        this.postgres = postgres;
        Database = LockNDatabase.FromConfiguration(LockNConfiguration.Build(Settings));
    }

    public Provider Provider { get; }

    /// <summary>The server's data directory; on SQLite it holds the database file (lockn.db), as by default.</summary>
    public string DataDirectory { get; }

    /// <summary>The PostgreSQL connection string (<c>Db</c>, env LOCKN_DB); null on SQLite.</summary>
    public string? ConnectionString { get; }

    public LockNDatabase Database { get; }

    public Dictionary<string, string?> Settings => new() { ["Data"] = DataDirectory, ["Db"] = ConnectionString ?? "" };

    /// <summary>The same, as the environment of a <c>lockn</c> process.</summary>
    public Dictionary<string, string> Environment => new() { ["LOCKN_DATA"] = DataDirectory, ["LOCKN_DB"] = ConnectionString ?? "" };

    public static async Task<TestDatabase> CreateAsync(Provider provider, PostgresServer postgres)
    {
        var data = Path.Combine(Path.GetTempPath(), "lockn-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(data);
        return provider == Provider.Postgres
            ? new TestDatabase(provider, data, await postgres.CreateDatabaseAsync(), postgres)
            : new TestDatabase(provider, data, null, null);
    }

    public async ValueTask DisposeAsync()
    {
        if (postgres is not null && ConnectionString is not null)
        {
            await postgres.DropDatabaseAsync(ConnectionString);
        }

        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
