using LockN.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace LockN.Tests.Storage;

/// <summary>The schema LockN migrates at start-up, on an empty SQLite file and an empty PostgreSQL database.</summary>
public class StorageTests(PostgresServer postgres)
{
    [Fact]
    public async Task Migrations_create_an_empty_sqlite_file_in_wal_mode()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        var file = Path.Combine(test.DataDirectory, "lockn.db");

        await test.Database.MigrateAsync(CancellationToken.None);

        Assert.True(File.Exists(file), $"{file} was not created");
        await AssertFullyMigratedAsync(test.Database);
        // A new connection sees the mode the file keeps, not one a migration connection set for itself.
        await using var connection = new SqliteConnection($"Data Source={file};Pooling=False");
        await connection.OpenAsync();
        await using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode;";
        Assert.Equal("wal", (string?)await pragma.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Migrations_create_the_tables_in_an_empty_postgres_database()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Postgres, postgres);

        await test.Database.MigrateAsync(CancellationToken.None);

        await AssertFullyMigratedAsync(test.Database);
        await using var connection = new NpgsqlConnection(test.ConnectionString);
        await connection.OpenAsync();
        await using var tables = new NpgsqlCommand("SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('api_keys', 'usage')", connection);
        Assert.Equal("api_keys,usage", (string?)await tables.ExecuteScalarAsync());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_usage_record_and_an_api_key_read_back_as_written(Provider provider)
    {
        await using var test = await TestDatabase.CreateAsync(provider, postgres);
        await test.Database.MigrateAsync(CancellationToken.None);
        var usage = NewUsage();
        var key = NewKey();

        await using (var db = test.Database.Open())
        {
            db.Usage.Add(usage);
            db.ApiKeys.Add(key);
            await db.SaveChangesAsync();
        }

        await using (var db = test.Database.Open())
        {
            var readUsage = await db.Usage.AsNoTracking().SingleAsync();
            Assert.True(readUsage.Id > 0, "the database assigns the id");
            Assert.Equivalent(usage, readUsage, strict: true);
            Assert.Equivalent(key, await db.ApiKeys.AsNoTracking().SingleAsync(), strict: true);
        }
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Migrating_twice_is_a_no_op(Provider provider)
    {
        await using var test = await TestDatabase.CreateAsync(provider, postgres);
        await test.Database.MigrateAsync(CancellationToken.None);
        await using (var db = test.Database.Open())
        {
            db.Usage.Add(NewUsage());
            await db.SaveChangesAsync();
        }

        var appliedBefore = await AppliedAsync(test.Database);

        await test.Database.MigrateAsync(CancellationToken.None);

        Assert.Equal(appliedBefore, await AppliedAsync(test.Database));
        await AssertFullyMigratedAsync(test.Database);
        await using var after = test.Database.Open();
        Assert.Equal(1, await after.Usage.CountAsync());
    }

    private static UsageRecord NewUsage() => new()
    {
        At = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        KeyId = "key_" + Guid.NewGuid().ToString("N")[..8],
        Endpoint = "/v1/audio/transcriptions",
        Model = "whisper-tiny.en",
        AudioSeconds = 11.0625,
        TokensIn = 12,
        TokensOut = 345,
        StatusCode = 200,
        LatencyMs = 812.5,
        Node = "node-" + Environment.ProcessId,
    };

    private static StoredApiKey NewKey() => new()
    {
        Id = "key_" + Guid.NewGuid().ToString("N")[..8],
        Name = "round trip",
        Prefix = Guid.NewGuid().ToString("N")[..12],
        SecretHash = [.. Enumerable.Range(0, 32).Select(i => (byte)(i * 7))],
        HashScheme = "hmac-sha256",
        Scopes = "audio admin",
        CreatedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        ExpiresAt = DateTimeOffset.UtcNow.AddDays(30).ToUnixTimeMilliseconds(),
        RevokedAt = null,
        LastUsedAt = null,
        RequestsPerMinute = 60,
        MaxConcurrentRequests = 2,
    };

    private static async Task<List<string>> AppliedAsync(LockNDatabase database)
    {
        await using var db = database.Open();
        return [.. await db.Database.GetAppliedMigrationsAsync()];
    }

    private static async Task AssertFullyMigratedAsync(LockNDatabase database)
    {
        await using var db = database.Open();
        Assert.Empty(await db.Database.GetPendingMigrationsAsync());
        Assert.Equal(db.Database.GetMigrations(), await db.Database.GetAppliedMigrationsAsync());
    }
}
