using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Hosting;
using LockN.Keys;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace LockN.Tests;

/// <summary>
/// The real LockN server on a real Kestrel socket (127.0.0.1, a free port) with the test-weight Whisper models
/// from ../shared/models, its own data directory, and its log lines captured for assertions.
/// </summary>
public class LockNServerFixture : IAsyncLifetime
{
    private WebApplication? app;

    /// <summary>Sends the seeded admin key (every scope) with each request.</summary>
    public HttpClient Client { get; private set; } = null!;

    /// <summary>Sends no key: for tests of what an unauthenticated caller gets.</summary>
    public HttpClient AnonymousClient { get; private set; } = null!;

    /// <summary>The running server's services, for tests that set up state the API cannot (e.g. an already expired key).</summary>
    public IServiceProvider Services => app!.Services;

    /// <summary>Seeded as LOCKN_ADMIN_KEY; has every scope.</summary>
    public string AdminKey { get; } = ApiKeySecret.Generate().Key;

    public Uri BaseAddress { get; private set; } = null!;
    public string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "lockn-tests-" + Guid.NewGuid().ToString("N"));
    public CapturedLogs Logs { get; } = new();

    /// <summary>Settings on top of the test defaults; override to build a server with other limits.</summary>
    protected virtual IDictionary<string, string?> Settings => new Dictionary<string, string?>();

    /// <summary>
    /// Whether the tests need the default Whisper model loaded before they start. Fixtures that never transcribe
    /// say no and start as soon as the server listens (the model still loads in the background, as in production).
    /// </summary>
    protected virtual bool WaitsForWhisper => true;

    /// <summary>Replaces services of the server before it is built; override to give it, e.g., a fake clock.</summary>
    protected virtual void ConfigureServices(IServiceCollection services)
    {
    }

    public virtual async ValueTask InitializeAsync()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Models"] = TestAssets.Models,
            ["Data"] = DataDirectory,
            ["Transcription:DefaultModel"] = "whisper-tiny.en",
            ["Transcription:PullDefaultModel"] = "false",
            [KeysOptions.AdminKeyConfigurationKey] = AdminKey,
        };
        if (!WaitsForWhisper)
        {
            // Whisper still loads (a request may use it), but as one plain worker: less CPU beside the tests.
            settings["Transcription:SpareWorkers"] = "0";
            settings["Transcription:WarmUp"] = "false";
        }

        foreach (var (key, value) in Settings)
        {
            settings[key] = value;
        }

        app = LockNServer.Build(settings, logging => logging.AddProvider(Logs), ConfigureServices);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseAddress = new Uri(address);
        Client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        Client.DefaultRequestHeaders.Authorization = new("Bearer", AdminKey);
        AnonymousClient = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        await WaitUntilAsync(WaitsForWhisper ? "/health/ready" : "/health/live", TimeSpan.FromSeconds(90));
    }

    public async Task<JsonElement> ReadinessAsync()
    {
        using var response = await AnonymousClient.GetAsync("/health/ready");
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    /// <summary>The default Whisper model's entry in /health/ready (state, workers, slots, queue, runtime).</summary>
    public async Task<JsonElement> DefaultModelAsync() =>
        (await ReadinessAsync()).GetProperty("models").EnumerateArray().Single(m => m.GetProperty("default").GetBoolean());

    /// <summary>Polls <paramref name="condition"/> every 2 ms; fails the test when it is not reached within 30 s.</summary>
    public static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), "condition not reached within 30 s");
            await Task.Delay(2);
        }
    }

    private async Task WaitUntilAsync(string probe, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            using var response = await AnonymousClient.GetAsync(probe);
            if (response.IsSuccessStatusCode)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"LockN did not answer {probe}: " + await response.Content.ReadAsStringAsync());
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Stops the server gracefully (flushing what it batches) and leaves the data directory for inspection.</summary>
    public async ValueTask DisposeAsyncKeepingData()
    {
        Client?.Dispose();
        AnonymousClient?.Dispose();
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
            app = null;
        }
    }

    public virtual async ValueTask DisposeAsync()
    {
        Client?.Dispose();
        AnonymousClient?.Dispose();
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>Keeps every formatted log line the server writes, for tests that look for an event (or a leak).</summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<string> lines = new();
    private readonly ConcurrentQueue<LogEntry> entries = new();

    public IReadOnlyCollection<string> Lines => lines;

    /// <summary>The same lines with their level and exception, for tests of how something is logged.</summary>
    public IReadOnlyCollection<LogEntry> Entries => entries;

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, lines, entries);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, ConcurrentQueue<string> lines, ConcurrentQueue<LogEntry> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var message = formatter(state, exception);
            entries.Enqueue(new LogEntry(logLevel, category, message, exception));
            lines.Enqueue($"{logLevel} {category}: {message}");
        }
    }
}

public sealed record LogEntry(LogLevel Level, string Category, string Message, Exception? Exception);
