using System.Data.Common;
using System.Diagnostics;
using LockN.Storage;
using LockN.Tests.Cli;
using LockN.Tests.Storage;
using LockN.Usage;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace LockN.Tests.Usage;

/// <summary>The ledger's writer: it never makes a request wait, and what it accepts reaches the database.</summary>
public class UsageRecorderTests(PostgresServer postgres)
{
    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_full_queue_drops_and_counts_at_once_and_the_stop_writes_what_it_accepted(Provider provider)
    {
        await using var test = await TestDatabase.CreateAsync(provider, postgres);
        await test.Database.MigrateAsync(CancellationToken.None);
        var logs = new CapturedLogs();
        using var recorder = Recorder(test.Database, logs, new UsageOptions { QueueCapacity = 5, FlushIntervalMilliseconds = 60_000 });

        // Not started: nothing drains the queue, as when the database is slower than the requests.
        var clock = Stopwatch.StartNew();
        var accepted = Enumerable.Range(0, 50).Select(i => recorder.TryRecord(Record(i))).ToList();
        clock.Stop();

        Assert.Equal(5, accepted.Count(a => a));
        Assert.All(accepted.Skip(5), a => Assert.False(a));
        Assert.Equal(45, recorder.Dropped);
        Assert.True(clock.ElapsedMilliseconds < 200, $"50 records took {clock.ElapsedMilliseconds} ms");
        Assert.Single(logs.Lines, l => l.Contains("queue is full", StringComparison.Ordinal));

        await recorder.StartAsync(CancellationToken.None);
        await recorder.StopAsync(CancellationToken.None);

        Assert.Equal(5, recorder.Written);
        await using var db = test.Database.Open();
        Assert.Equal([0, 1, 2, 3, 4], await db.Usage.Select(u => u.StatusCode - 200).OrderBy(s => s).ToListAsync());
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_batch_the_database_refuses_is_retried_until_it_is_written(Provider provider)
    {
        // No schema yet: every insert fails until the test migrates.
        await using var test = await TestDatabase.CreateAsync(provider, postgres);
        var logs = new CapturedLogs();
        var clock = new FakeTimeProvider();
        using var recorder = Recorder(test.Database, logs, new UsageOptions { FlushIntervalMilliseconds = 0, WriteRetries = 6 }, clock);
        await recorder.StartAsync(CancellationToken.None);
        for (var i = 0; i < 7; i++)
        {
            Assert.True(recorder.TryRecord(Record(i)));
        }

        // The writer now waits out its first retry delay, which passes only when the test moves the clock.
        await WaitForAsync(() => Task.FromResult(logs.Lines.Any(l => l.Contains("retrying", StringComparison.Ordinal))), TimeSpan.FromSeconds(10));
        await test.Database.MigrateAsync(CancellationToken.None);
        await WaitForAsync(() =>
        {
            clock.Advance(TimeSpan.FromMilliseconds(500)); // again if the writer had not started waiting yet
            return Task.FromResult(recorder.Written == 7);
        }, TimeSpan.FromSeconds(10));
        await recorder.StopAsync(CancellationToken.None);

        Assert.Equal(7, recorder.Written);
        Assert.Equal(0, recorder.Lost);
        Assert.Single(logs.Lines, l => l.Contains("retrying", StringComparison.Ordinal)); // one failure, one retry
        await using var db = test.Database.Open();
        Assert.Equal(7, await db.Usage.CountAsync());
    }

    [Fact]
    public async Task A_partial_batch_is_written_when_the_flush_interval_has_passed()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        await test.Database.MigrateAsync(CancellationToken.None);
        var clock = new FakeTimeProvider();
        using var recorder = Recorder(test.Database, new CapturedLogs(), new UsageOptions { FlushIntervalMilliseconds = 60_000, BatchSize = 500 }, clock);
        await recorder.StartAsync(CancellationToken.None);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(recorder.TryRecord(Record(i)));
        }

        await WaitForAsync(() => Task.FromResult(recorder.Queued == 0), TimeSpan.FromSeconds(10)); // taken into the batch
        clock.Advance(TimeSpan.FromSeconds(59));
        var writtenBeforeTheInterval = recorder.Written;
        clock.Advance(TimeSpan.FromSeconds(1));
        await WaitForAsync(() => Task.FromResult(recorder.Written == 3), TimeSpan.FromSeconds(10));

        Assert.Equal(0, writtenBeforeTheInterval);
        await using var db = test.Database.Open();
        Assert.Equal(3, await db.Usage.CountAsync());
        await recorder.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Dropped_records_are_warned_about_at_most_once_a_minute()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        var logs = new CapturedLogs();
        var clock = new FakeTimeProvider();
        using var recorder = Recorder(test.Database, logs, new UsageOptions { QueueCapacity = 1 }, clock);
        Assert.True(recorder.TryRecord(Record(0))); // not started: the queue stays full

        var warnings = new List<int>();
        foreach (var step in new[] { 0, 30, 29, 1, 59, 1 })
        {
            clock.Advance(TimeSpan.FromSeconds(step));
            Assert.False(recorder.TryRecord(Record(1)));
            warnings.Add(logs.Lines.Count(l => l.Contains("queue is full", StringComparison.Ordinal)));
        }

        Assert.Equal([1, 1, 1, 2, 2, 3], warnings);
        Assert.Equal(6, recorder.Dropped);
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task Requests_do_not_wait_while_the_ledger_table_is_locked(Provider provider)
    {
        await using var test = await TestDatabase.CreateAsync(provider, postgres);
        var node = "locked-" + Guid.NewGuid().ToString("N")[..8];
        var server = await LedgerServer.StartAsync(test, node, new Dictionary<string, string?> { ["Usage:FlushIntervalMilliseconds"] = "0" });
        try
        {
            var slowest = TimeSpan.Zero;
            await using (var tableLock = await TableLock.TakeAsync(test))
            {
                for (var i = 0; i < 10; i++)
                {
                    var clock = Stopwatch.StartNew();
                    using var response = await server.Client.GetAsync("/v1/models");
                    response.EnsureSuccessStatusCode();
                    slowest = TimeSpan.FromTicks(Math.Max(slowest.Ticks, clock.Elapsed.Ticks));
                }

                if (provider == Provider.Postgres)
                {
                    // The writer really is stuck behind the lock, not merely idle.
                    await WaitForAsync(async () => await WaitingLocksAsync(test) > 0, TimeSpan.FromSeconds(10));
                }

                await Task.Delay(500);
                await tableLock.ReleaseAsync();
            }

            Assert.True(slowest < TimeSpan.FromSeconds(1), $"a request took {slowest.TotalMilliseconds:0} ms while the ledger was locked");
        }
        finally
        {
            await server.DisposeAsync();
        }

        await using var db = test.Database.Open();
        Assert.Equal(10, await db.Usage.CountAsync(u => u.Node == node));
    }

    [Theory]
    [InlineData("LOCKN_Usage__QueueCapacity", "0", "Usage:QueueCapacity")]
    [InlineData("LOCKN_Usage__BatchSize", "many", "Usage:BatchSize")]
    [InlineData("LOCKN_Usage__FlushIntervalMilliseconds", "-1", "Usage:FlushIntervalMilliseconds")]
    [InlineData("LOCKN_Usage__JournalFsyncIntervalMilliseconds", "-1", "Usage:JournalFsyncIntervalMilliseconds")]
    public async Task Serve_with_an_invalid_usage_setting_fails_at_start_naming_the_key(string variable, string value, string key)
    {
        var data = Path.Combine(Path.GetTempPath(), "lockn-tests-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await LocknProcess.RunAsync(
                ["serve", "--urls", "http://127.0.0.1:0", "--models", TestAssets.WhisperModels, "--data", data],
                new Dictionary<string, string> { [variable] = value, ["LOCKN_DB"] = "", ["LOCKN_Transcription__PullDefaultModel"] = "false" });

            Assert.Equal(2, result.ExitCode);
            Assert.Contains(key, result.Stderr, StringComparison.Ordinal);
            Assert.Single(result.Stderr.Trim().Split('\n'));
        }
        finally
        {
            if (Directory.Exists(data))
            {
                Directory.Delete(data, recursive: true);
            }
        }
    }

    private static UsageRecorder Recorder(LockNDatabase database, CapturedLogs logs, UsageOptions options, TimeProvider? clock = null)
    {
        var factory = LoggerFactory.Create(logging => logging.AddProvider(logs));
        return new UsageRecorder(database, options, "recorder-test", clock ?? new FakeTimeProvider(), factory.CreateLogger<UsageRecorder>());
    }

    private static UsageRecord Record(int i) => new()
    {
        At = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        Endpoint = "/v1/models",
        StatusCode = 200 + i,
        LatencyMs = 1,
        Node = "recorder-test",
    };

    private static async Task<long> WaitingLocksAsync(TestDatabase test)
    {
        await using var connection = new NpgsqlConnection(test.ConnectionString);
        await connection.OpenAsync();
        await using var waiting = new NpgsqlCommand("SELECT count(*) FROM pg_locks WHERE NOT granted", connection);
        return (long)(await waiting.ExecuteScalarAsync())!;
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(20);
        }
    }

    /// <summary>A transaction that keeps every other writer out of the usage table until it is released.</summary>
    private sealed class TableLock(DbConnection connection, DbTransaction transaction) : IAsyncDisposable
    {
        public static async Task<TableLock> TakeAsync(TestDatabase test)
        {
            if (test.Provider == Provider.Postgres)
            {
                var connection = new NpgsqlConnection(test.ConnectionString);
                await connection.OpenAsync();
                var transaction = await connection.BeginTransactionAsync();
                await using var lockTable = new NpgsqlCommand("LOCK TABLE usage IN EXCLUSIVE MODE", connection, transaction);
                await lockTable.ExecuteNonQueryAsync();
                return new TableLock(connection, transaction);
            }

            var sqlite = new SqliteConnection($"Data Source={Path.Combine(test.DataDirectory, "lockn.db")};Pooling=False");
            await sqlite.OpenAsync();
            // BEGIN IMMEDIATE: the write lock from the start.
            return new TableLock(sqlite, sqlite.BeginTransaction(deferred: false));
        }

        public Task ReleaseAsync() => transaction.CommitAsync();

        public async ValueTask DisposeAsync()
        {
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }
    }
}
