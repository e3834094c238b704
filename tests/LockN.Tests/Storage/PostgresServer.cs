using System.Diagnostics;
using LockN.Tests.Storage;
using Npgsql;

[assembly: AssemblyFixture(typeof(PostgresServer))]

namespace LockN.Tests.Storage;

/// <summary>
/// A real PostgreSQL for the tests: the cluster named by <c>LOCKN_TEST_POSTGRES</c> (a connection string, as
/// <c>.ci/run</c> sets), or else a throw-away one started on first use with <c>.ci/postgres-cluster</c> and removed
/// at the end. Never skipped: without either, every PostgreSQL test fails with the reason.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    public const string EnvironmentVariable = "LOCKN_TEST_POSTGRES";

    private readonly SemaphoreSlim startLock = new(1, 1);
    private readonly List<string> databases = [];
    private string? serverConnectionString;
    private string? ownClusterDirectory;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    /// <summary>A new, empty database of its own, dropped when the test run ends; its Npgsql connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var server = await ServerAsync();
        var name = "lockn_" + Guid.NewGuid().ToString("N")[..16];
        await using (var connection = new NpgsqlConnection(server))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync();
        }

        lock (databases)
        {
            databases.Add(name);
        }

        return new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/>, closing whatever still uses it.</summary>
    public async Task DropDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        await using var connection = new NpgsqlConnection(await ServerAsync());
        await connection.OpenAsync();
        await DropAsync(connection, name);
        lock (databases)
        {
            databases.Remove(name);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (serverConnectionString is not null && ownClusterDirectory is null && databases.Count > 0)
        {
            // A shared cluster outlives this run: leave it as it was.
            await using var connection = new NpgsqlConnection(serverConnectionString);
            await connection.OpenAsync();
            foreach (var name in databases.ToList())
            {
                await DropAsync(connection, name);
            }
        }

        NpgsqlConnection.ClearAllPools();
        if (ownClusterDirectory is not null)
        {
            await RunClusterScriptAsync("stop", ownClusterDirectory);
        }

        startLock.Dispose();
    }

    private static async Task DropAsync(NpgsqlConnection connection, string name)
    {
        NpgsqlConnection.ClearAllPools();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }

    private async Task<string> ServerAsync()
    {
        await startLock.WaitAsync();
        try
        {
            if (serverConnectionString is not null)
            {
                return serverConnectionString;
            }

            if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } given)
            {
                serverConnectionString = given;
                return given;
            }

            var directory = Path.Combine(Path.GetTempPath(), "lockn-test-postgres-" + Guid.NewGuid().ToString("N"));
            var output = await RunClusterScriptAsync("start", directory);
            ownClusterDirectory = directory;
            serverConnectionString = output.Trim().Split('\n')[^1];
            return serverConnectionString;
        }
        finally
        {
            startLock.Release();
        }
    }

    private static async Task<string> RunClusterScriptAsync(string action, string directory)
    {
        var script = Path.Combine(TestAssets.RepositoryRoot, ".ci", "postgres-cluster");
        var startInfo = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        startInfo.ArgumentList.Add(script);
        startInfo.ArgumentList.Add(action);
        startInfo.ArgumentList.Add(directory);
        Process process;
        try
        {
            process = Process.Start(startInfo)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"PostgreSQL tests need {EnvironmentVariable} (a connection string) or bash to run {script}: {ex.Message}", ex);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException(
                    $"PostgreSQL tests need {EnvironmentVariable} (a connection string) or a local PostgreSQL that {script} can start; " +
                    $"'{action}' failed with exit code {process.ExitCode}: {(await stderr).Trim()}");
            }

            return await stdout;
        }
    }
}
