using System.Diagnostics;
using System.Net;
using LockN.Keys;
using LockN.Storage;
using LockN.Tests.Dispatch;
using LockN.Tests.Storage;
using LockN.Usage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;

namespace LockN.Tests.Usage;

/// <summary>The usage journal: a killed process loses no usage row, and no row reaches the ledger twice.</summary>
public class UsageJournalTests(PostgresServer postgres, ITestOutputHelper output)
{
    [Fact]
    public async Task Kill_9_under_four_clients_loses_no_usage_row_and_the_restart_writes_each_once()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        var node = "killed-" + Guid.NewGuid().ToString("N")[..8];
        var port = RealLlamaServer.FreePort();
        var adminKey = ApiKeySecret.Generate().Key;
        var environment = new Dictionary<string, string>(test.Environment)
        {
            ["LOCKN_ADMIN_KEY"] = adminKey,
            ["LOCKN_NODE"] = node,
            ["LOCKN_Transcription__PullDefaultModel"] = "false",
            ["LOCKN_Transcription__DefaultModel"] = "whisper-tiny.en",
            ["LOCKN_Keys__DefaultRequestsPerMinute"] = "1000000",
            // Small batches, so the kill finds the writer amid commits and trims rather than idle.
            ["LOCKN_Usage__BatchSize"] = "100",
            ["LOCKN_Usage__FlushIntervalMilliseconds"] = "50",
        };

        var received = new int[4];
        var chunked = true;
        using (var first = new ServeProcess(port, environment))
        {
            await first.WaitUntilServingAsync(adminKey);
            var clients = Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
            {
                using var client = ServeProcess.Client(port, adminKey);
                while (true)
                {
                    try
                    {
                        // The whole body read: for a chunked response that includes its last chunk, which Kestrel
                        // sends only after the usage middleware has recorded the request.
                        using var response = await client.GetAsync("/v1/models");
                        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                        chunked &= response.Headers.TransferEncodingChunked == true;
                        received[i]++;
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                    {
                        return; // the server is gone
                    }
                }
            })).ToArray();

            await WaitForAsync(() => Task.FromResult(received.Sum() >= 2000 || clients.Any(c => c.IsCompleted)), TimeSpan.FromMinutes(1));
            first.Kill();
            await Task.WhenAll(clients);
        }

        var rowsAtKill = await RowsAsync(test, node);
        output.WriteLine($"clients received {received.Sum()} responses ({string.Join(", ", received)}); the database had {rowsAtKill.Count} rows at the kill");
        using (var second = new ServeProcess(port, environment))
        {
            await second.WaitUntilServingAsync(adminKey);
            await second.StopAsync();
        }

        var rows = await RowsAsync(test, node);
        Assert.True(chunked, "the lower bound below needs /v1/models answered in chunks");
        // Every response a client saw is a row; beyond them at most one per client, whose response the kill cut.
        Assert.InRange(rows.Count, received.Sum(), received.Sum() + received.Length);
        Assert.Equal(rows.Count, rows.Select(r => r.JournalId).Distinct().Count());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(test.DataDirectory, UsageJournal.FolderName)));
    }

    [Theory]
    [InlineData(Provider.Sqlite)]
    [InlineData(Provider.Postgres)]
    public async Task A_journal_left_by_an_unclean_stop_is_replayed_with_each_row_once(Provider provider)
    {
        await using var test = await TestDatabase.CreateAsync(provider, postgres);
        await test.Database.MigrateAsync(CancellationToken.None);
        var journal = Path.Combine(test.DataDirectory, UsageJournal.FolderName);
        var logs = new CapturedLogs();

        // Ten records written to the ledger, whose journal comes back as if the process died between the commit and the trim.
        var snapshot = new Dictionary<string, byte[]>();
        using (var committed = Recorder(test.Database, journal, logs, new UsageOptions()))
        {
            for (var i = 0; i < 10; i++)
            {
                Assert.True(committed.TryRecord(Record(200 + i)));
            }

            foreach (var file in Directory.EnumerateFiles(journal))
            {
                snapshot[file] = await File.ReadAllBytesAsync(file);
            }

            await committed.StartAsync(CancellationToken.None);
            await committed.StopAsync(CancellationToken.None);
        }

        Assert.NotEmpty(snapshot);
        foreach (var (file, bytes) in snapshot)
        {
            await File.WriteAllBytesAsync(file, bytes);
        }

        // Five more that never reached the database, and the last line cut short, as by a power loss.
        using (var killed = Recorder(test.Database, journal, logs, new UsageOptions()))
        {
            for (var i = 10; i < 15; i++)
            {
                Assert.True(killed.TryRecord(Record(200 + i)));
            }
        }

        await File.AppendAllTextAsync(Directory.EnumerateFiles(journal).Order().Last(), """{"at":17,"endpo""");

        using var restarted = Recorder(test.Database, journal, logs, new UsageOptions());
        await restarted.StartAsync(CancellationToken.None);
        await restarted.StopAsync(CancellationToken.None);

        await using var db = test.Database.Open();
        Assert.Equal(Enumerable.Range(200, 15), await db.Usage.Select(u => u.StatusCode).OrderBy(s => s).ToListAsync());
        Assert.Equal(5, restarted.Replayed);
        Assert.Single(logs.Lines, l => l.Contains("1 lines of usage journal", StringComparison.Ordinal));
        Assert.Empty(Directory.EnumerateFiles(journal));
    }

    [Fact]
    public async Task The_journal_is_emptied_once_its_records_are_in_the_ledger()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        await test.Database.MigrateAsync(CancellationToken.None);
        var journal = Path.Combine(test.DataDirectory, UsageJournal.FolderName);
        using var recorder = Recorder(test.Database, journal, new CapturedLogs(), new UsageOptions { BatchSize = 7, FlushIntervalMilliseconds = 0 });
        await recorder.StartAsync(CancellationToken.None);
        for (var i = 0; i < 50; i++)
        {
            Assert.True(recorder.TryRecord(Record(200)));
        }

        // Running, not stopped: an idle writer has trimmed everything behind it.
        await WaitForAsync(() => Task.FromResult(recorder.Written == 50 && !Directory.EnumerateFiles(journal).Any()), TimeSpan.FromSeconds(10));
        await recorder.StopAsync(CancellationToken.None);

        await using var db = test.Database.Open();
        Assert.Equal(50, await db.Usage.CountAsync());
        Assert.Equal(0, recorder.Journal!.Segments);
    }

    [Fact]
    public async Task A_record_the_full_queue_drops_is_counted_and_not_journaled()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        await test.Database.MigrateAsync(CancellationToken.None);
        var journal = Path.Combine(test.DataDirectory, UsageJournal.FolderName);
        using (var full = Recorder(test.Database, journal, new CapturedLogs(), new UsageOptions { QueueCapacity = 2 }))
        {
            // Not started: nothing drains the queue.
            Assert.Equal([true, true, false, false, false], Enumerable.Range(0, 5).Select(i => full.TryRecord(Record(200 + i))).ToList());
            Assert.Equal(3, full.Dropped);
        }

        Assert.Equal(2, Directory.EnumerateFiles(journal).Sum(f => File.ReadAllLines(f).Length));
        using var restarted = Recorder(test.Database, journal, new CapturedLogs(), new UsageOptions());
        await restarted.StartAsync(CancellationToken.None);
        await restarted.StopAsync(CancellationToken.None);

        await using var db = test.Database.Open();
        Assert.Equal([200, 201], await db.Usage.Select(u => u.StatusCode).OrderBy(s => s).ToListAsync());
    }

    [Fact]
    public async Task A_record_JSON_cannot_hold_is_still_queued_without_a_journal_line()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        var journal = Path.Combine(test.DataDirectory, UsageJournal.FolderName);
        var logs = new CapturedLogs();
        using var recorder = Recorder(test.Database, journal, logs, new UsageOptions());
        var record = Record(200);
        record.AudioSeconds = double.NaN;

        Assert.True(recorder.TryRecord(record));

        Assert.Equal(1, recorder.Queued);
        Assert.Equal(0, Directory.EnumerateFiles(journal).Sum(f => File.ReadAllLines(f).Length));
        Assert.Single(logs.Lines, l => l.Contains("Writing usage journal", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_the_journal_nothing_is_written_to_the_data_directory()
    {
        await using var test = await TestDatabase.CreateAsync(Provider.Sqlite, postgres);
        var journal = Path.Combine(test.DataDirectory, UsageJournal.FolderName);
        using var recorder = Recorder(test.Database, journal, new CapturedLogs(), new UsageOptions { Journal = false });

        Assert.True(recorder.TryRecord(Record(200)));

        Assert.Null(recorder.Journal);
        Assert.False(Directory.Exists(journal));
    }

    private static UsageRecorder Recorder(LockNDatabase database, string journal, CapturedLogs logs, UsageOptions options)
    {
        var factory = LoggerFactory.Create(logging => logging.AddProvider(logs));
        return new UsageRecorder(database, options, "journal-test", new FakeTimeProvider(DateTimeOffset.UtcNow), factory.CreateLogger<UsageRecorder>(), journal);
    }

    private static UsageRecord Record(int status) => new()
    {
        At = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        Endpoint = "/v1/models",
        StatusCode = status,
        LatencyMs = 1,
        Node = "journal-test",
    };

    private static async Task<List<UsageRecord>> RowsAsync(TestDatabase test, string node)
    {
        await using var db = test.Database.Open();
        return await db.Usage.Where(u => u.Node == node).ToListAsync();
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

    /// <summary>A real <c>lockn serve</c> on SQLite in the test's data directory.</summary>
    private sealed class ServeProcess : IDisposable
    {
        private readonly Process process;
        private readonly int port;
        private readonly Task<string> stderr;
        private readonly Task<string> stdout;

        public ServeProcess(int port, IDictionary<string, string> environment)
        {
            this.port = port;
            var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "lockn"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
                WorkingDirectory = TestAssets.RepositoryRoot,
            };
            foreach (var argument in (string[])["serve", "--urls", $"http://127.0.0.1:{port}", "--models", TestAssets.Models])
            {
                start.ArgumentList.Add(argument);
            }

            foreach (var (key, value) in environment)
            {
                start.Environment[key] = value;
            }

            process = Process.Start(start)!;
            stderr = process.StandardError.ReadToEndAsync();
            stdout = process.StandardOutput.ReadToEndAsync();
        }

        public static HttpClient Client(int port, string key)
        {
            var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            client.DefaultRequestHeaders.Authorization = new("Bearer", key);
            return client;
        }

        /// <summary>Until the admin key (seeded in the background) is let in.</summary>
        public async Task WaitUntilServingAsync(string adminKey)
        {
            using var client = Client(port, adminKey);
            await WaitForAsync(async () =>
            {
                if (process.HasExited)
                {
                    Assert.Fail("lockn serve exited: " + await stderr + await stdout);
                }

                try
                {
                    using var response = await client.GetAsync("/admin/usage");
                    return response.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false; // not listening yet
                }
            }, TimeSpan.FromSeconds(90));
        }

        /// <summary>SIGKILL: none of LockN's handlers run.</summary>
        public void Kill()
        {
            process.Kill();
            process.WaitForExit();
        }

        /// <summary>SIGTERM, the graceful stop, and its exit.</summary>
        public async Task StopAsync()
        {
            ManagedServerTests.Signal(process.Id, "TERM");
            using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            await process.WaitForExitAsync(limit.Token);
            Assert.Equal(0, process.ExitCode);
        }

        public void Dispose()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }

            process.Dispose();
        }
    }
}
