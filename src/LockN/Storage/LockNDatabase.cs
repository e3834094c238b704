using System.Data.Common;
using LockN.Hosting;
using Microsoft.EntityFrameworkCore;

namespace LockN.Storage;

/// <summary>
/// Where keys and usage live. The root key <c>Db</c> (env <c>LOCKN_DB</c>) holds a PostgreSQL connection string
/// (<c>Host=…;Database=…</c>) when several nodes share one database; left empty, a SQLite file in the data
/// directory (WAL mode) is used.
/// </summary>
public sealed class LockNDatabase
{
    public const string ConfigurationKey = "Db";

    private readonly Func<LockNDb> open;

    private LockNDatabase(bool isPostgres, string description, Func<LockNDb> open)
    {
        IsPostgres = isPostgres;
        Description = description;
        this.open = open;
    }

    public bool IsPostgres { get; }

    /// <summary>Provider and location without credentials, for logs and errors.</summary>
    public string Description { get; }

    /// <summary>A new unit of work; dispose it when done.</summary>
    public LockNDb Open() => open();

    public static LockNDatabase FromConfiguration(IConfiguration configuration)
    {
        var connectionString = configuration[ConfigurationKey];
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            var path = Path.Combine(LockNConfiguration.DataDirectory(configuration), "lockn.db");
            return Sqlite($"Data Source={path};Pooling=True", $"SQLite {path}");
        }

        DbConnectionStringBuilder parsed;
        try
        {
            parsed = new DbConnectionStringBuilder { ConnectionString = connectionString };
        }
        catch (ArgumentException ex)
        {
            throw new InvalidOperationException($"{ConfigurationKey} (LOCKN_DB) is not a connection string: {ex.Message}", ex);
        }

        if (parsed.ContainsKey("Data Source") && !parsed.ContainsKey("Host"))
        {
            return Sqlite(connectionString, $"SQLite {parsed["Data Source"]}");
        }

        if (!parsed.ContainsKey("Host"))
        {
            throw new InvalidOperationException($"{ConfigurationKey} (LOCKN_DB) must be a PostgreSQL connection string with Host=… (or a SQLite one with Data Source=…).");
        }

        var options = new DbContextOptionsBuilder<PostgresLockNDb>().UseNpgsql(connectionString).Options;
        var database = parsed.TryGetValue("Database", out var name) ? name : "(default database)";
        return new LockNDatabase(true, $"PostgreSQL {parsed["Host"]}/{database}", () => new PostgresLockNDb(options));
    }

    /// <summary>Creates or upgrades the schema; run at start-up before anything reads.</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var db = Open();
        await db.Database.MigrateAsync(cancellationToken);
        if (!IsPostgres)
        {
            // WAL lets the usage writer and readers work side by side; the setting persists in the file.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }
    }

    private static LockNDatabase Sqlite(string connectionString, string description)
    {
        var options = new DbContextOptionsBuilder<SqliteLockNDb>().UseSqlite(connectionString).Options;
        return new LockNDatabase(false, description, () => new SqliteLockNDb(options));
    }
}
