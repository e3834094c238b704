using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Keys;
using LockN.Storage;
using LockN.Tests.Storage;
using Microsoft.EntityFrameworkCore;

namespace LockN.Tests.Usage;

/// <summary>A LockN server on a given database, with extra settings; dispose it for a graceful stop.</summary>
public sealed class LedgerServer(IDictionary<string, string?> settings, TimeProvider? clock = null) : LockNServerFixture
{
    protected override IDictionary<string, string?> Settings => settings;

    protected override void ConfigureServices(IServiceCollection services)
    {
        if (clock is not null)
        {
            services.AddSingleton(clock);
        }
    }

    public static async Task<LedgerServer> StartAsync(TestDatabase database, string node, IDictionary<string, string?>? extra = null, TimeProvider? clock = null)
    {
        var settings = new Dictionary<string, string?>(database.Settings) { ["Node"] = node };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var server = new LedgerServer(settings, clock);
        await server.InitializeAsync();
        return server;
    }
}

/// <summary>A request the test made and what the ledger should say of it.</summary>
public sealed record SentRequest(string Endpoint, string? KeyId, string? Model, int StatusCode, double AudioSeconds, DateTimeOffset At);

/// <summary>
/// One run of the ledger on one database: rows written straight to the database on earlier days and other keys,
/// then <see cref="Sent"/> real requests to a server that flushes only at its graceful stop, then a second server
/// (<see cref="Reader"/>) to ask for the reports. The tests compare what the ledger says with what was done.
/// </summary>
public abstract class UsageScenario(PostgresServer postgres) : IAsyncLifetime
{
    public const string DefaultModel = "whisper-tiny.en";

    private readonly List<SentRequest> sent = [];

    protected abstract Provider Provider { get; }

    public TestDatabase Database { get; private set; } = null!;

    /// <summary>The node that served <see cref="Sent"/>; the seeded rows have other node names.</summary>
    public string Node { get; } = "node-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Rows put in the database directly: earlier days, keys, tokens and errors the HTTP requests lack.</summary>
    public IReadOnlyList<UsageRecord> Seeded { get; private set; } = [];

    public IReadOnlyList<SentRequest> Sent => sent;

    /// <summary>When the first request was sent and the last answered.</summary>
    public DateTimeOffset SendingStarted { get; private set; }

    public DateTimeOffset SendingEnded { get; private set; }

    /// <summary>The rows of <see cref="Node"/>, read after its graceful stop.</summary>
    public IReadOnlyList<UsageRecord> Recorded { get; private set; } = [];

    /// <summary>A second server on the same database, up after the first stopped, for the report endpoints.</summary>
    public LedgerServer Reader { get; private set; } = null!;

    /// <summary>A key with the transcribe scope only, which made some of the requests.</summary>
    public string TranscriberKey { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Database = await TestDatabase.CreateAsync(Provider, postgres);
        await Database.Database.MigrateAsync(CancellationToken.None);
        Seeded = await SeedAsync();

        // Nothing is flushed before the stop unless the stop flushes: the interval is longer than the test.
        var server = await LedgerServer.StartAsync(Database, Node, new Dictionary<string, string?>
        {
            ["Transcription:DefaultModel"] = DefaultModel,
            ["Usage:FlushIntervalMilliseconds"] = "60000",
            ["Usage:BatchSize"] = "10000",
        });
        try
        {
            var transcriber = await server.Services.GetRequiredService<ApiKeyStore>()
                .CreateAsync(new ApiKeyRequest("usage transcriber", [ApiKeyScopes.Transcribe], null, null, null), CancellationToken.None);
            TranscriberKey = transcriber.Key!;
            using var transcriberClient = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
            transcriberClient.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TranscriberKey);
            var callers = new Callers(
                new Caller(server.Client, await KeyIdAsync(server.AdminKey)),
                new Caller(transcriberClient, transcriber.Id),
                new Caller(server.AnonymousClient, null));

            SendingStarted = DateTimeOffset.UtcNow;
            await SendAsync(callers);
            SendingEnded = DateTimeOffset.UtcNow;
        }
        finally
        {
            await server.DisposeAsync();
        }

        await using (var db = Database.Database.Open())
        {
            Recorded = await db.Usage.AsNoTracking().Where(u => u.Node == Node).OrderBy(u => u.Id).ToListAsync();
        }

        Reader = await LedgerServer.StartAsync(Database, Node + "-reader");
    }

    public async ValueTask DisposeAsync()
    {
        if (Reader is not null)
        {
            await Reader.DisposeAsync();
        }

        if (Database is not null)
        {
            await Database.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// 25 requests from the admin key, a transcribe-only key and no key: cheap listings, lookups that miss, an
    /// unknown route, a refusal without a key, transcriptions and refused ones.
    /// </summary>
    private async Task SendAsync(Callers callers)
    {
        for (var i = 0; i < 12; i++)
        {
            await GetAsync(callers.Admin, "/v1/models", "/v1/models");
        }

        await GetAsync(callers.Anonymous, "/v1/models", "/v1/models");
        await GetAsync(callers.Transcriber, "/v1/models", "/v1/models");

        for (var i = 0; i < 3; i++)
        {
            await GetAsync(callers.Admin, "/v1/models/" + DefaultModel, "/v1/models/{id}");
        }

        for (var i = 0; i < 2; i++)
        {
            await GetAsync(callers.Admin, "/v1/models/whisper-none-" + i, "/v1/models/{id}");
        }

        await GetAsync(callers.Admin, "/v1/no-such-route", "/v1/no-such-route");

        foreach (var seconds in new[] { 1.0, 1.5, 2.25 })
        {
            using var response = await callers.Transcriber.Client.PostAsync("/v1/audio/transcriptions",
                TestAudio.Form(TestAudio.NoiseWav(seconds), "noise.wav", ("model", "whisper-1"), ("response_format", "verbose_json")));
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            Add("/v1/audio/transcriptions", callers.Transcriber, DefaultModel, response, body.GetProperty("duration").GetDouble());
        }

        // An English-only model cannot translate: refused after the model is known, before any audio is run.
        using (var response = await callers.Admin.Client.PostAsync("/v1/audio/translations",
            TestAudio.Form(TestAudio.NoiseWav(1), "noise.wav", ("model", DefaultModel))))
        {
            Add("/v1/audio/translations", callers.Admin, DefaultModel, response, 0);
        }

        using (var response = await callers.Admin.Client.PostAsync("/v1/audio/transcriptions",
            TestAudio.Form(TestAudio.NoiseWav(1), "noise.wav", ("model", "whisper-none"))))
        {
            Add("/v1/audio/transcriptions", callers.Admin, null, response, 0);
        }
    }

    private async Task GetAsync(Caller caller, string path, string endpoint)
    {
        using var response = await caller.Client.GetAsync(path);
        await response.Content.ReadAsByteArrayAsync();
        Add(endpoint, caller, null, response, 0);
    }

    private void Add(string endpoint, Caller caller, string? model, HttpResponseMessage response, double audioSeconds) =>
        sent.Add(new SentRequest(endpoint, caller.KeyId, model, (int)response.StatusCode, audioSeconds, DateTimeOffset.UtcNow));

    /// <summary>The stored id of a key, as the ledger records it.</summary>
    private async Task<string> KeyIdAsync(string key)
    {
        Assert.True(ApiKeySecret.TryParse(key, out var prefix, out _));
        await using var db = Database.Database.Open();
        return await db.ApiKeys.Where(k => k.Prefix == prefix).Select(k => k.Id).SingleAsync();
    }

    private sealed record Caller(HttpClient Client, string? KeyId);

    private sealed record Callers(Caller Admin, Caller Transcriber, Caller Anonymous);

    private async Task<IReadOnlyList<UsageRecord>> SeedAsync()
    {
        var today = DateTimeOffset.UtcNow.Date;
        UsageRecord Row(int daysAgo, string? key, string? model, double audio, long tokensIn, long tokensOut, int status) => new()
        {
            At = new DateTimeOffset(today.AddDays(-daysAgo).AddHours(12), TimeSpan.Zero).ToUnixTimeMilliseconds(),
            KeyId = key,
            Endpoint = "/v1/audio/transcriptions",
            Model = model,
            AudioSeconds = audio,
            TokensIn = tokensIn,
            TokensOut = tokensOut,
            StatusCode = status,
            LatencyMs = 100,
            Node = "seed-" + Node,
        };

        var rows = new List<UsageRecord>
        {
            Row(2, "key_alpha", "whisper-base", 60, 10, 200, 200),
            Row(2, "key_alpha", "whisper-base", 30, 5, 100, 200),
            Row(2, "key_beta", "whisper-base", 0, 0, 0, 429),
            Row(5, "key_beta", "whisper-small", 90, 0, 300, 200),
            Row(5, "key_alpha", DefaultModel, 12.5, 0, 40, 200),
            Row(10, "key_gamma", "whisper-small", 45, 20, 150, 200),
            Row(10, null, null, 0, 0, 0, 401),
            // Outside the default 30 days.
            Row(40, "key_alpha", "whisper-base", 600, 0, 1000, 200),
        };
        await using var db = Database.Database.Open();
        db.Usage.AddRange(rows);
        await db.SaveChangesAsync();
        return rows;
    }
}

public sealed class SqliteUsageScenario(PostgresServer postgres) : UsageScenario(postgres)
{
    protected override Provider Provider => Provider.Sqlite;
}

public sealed class PostgresUsageScenario(PostgresServer postgres) : UsageScenario(postgres)
{
    protected override Provider Provider => Provider.Postgres;
}
