using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Keys;
using LockN.Storage;
using LockN.Tests.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace LockN.Tests.Keys;

/// <summary>The keys server on a fresh PostgreSQL database instead of SQLite.</summary>
public sealed class PostgresKeysServerFixture(PostgresServer postgres) : KeysServerFixture
{
    private string? connectionString;

    protected override IDictionary<string, string?> Settings
    {
        get
        {
            var settings = base.Settings;
            settings[LockNDatabase.ConfigurationKey] = connectionString;
            return settings;
        }
    }

    public override async ValueTask InitializeAsync()
    {
        connectionString = await postgres.CreateDatabaseAsync();
        await base.InitializeAsync();
    }
}

/// <summary>The whole authorization matrix again, on PostgreSQL.</summary>
public class PostgresAuthorizationMatrixTests(PostgresKeysServerFixture server) : AuthorizationMatrixTests(server), IClassFixture<PostgresKeysServerFixture>;

/// <summary>Two LockN nodes sharing one PostgreSQL database.</summary>
public class SharedDatabaseTests(PostgresServer postgres)
{
    private sealed class Node(string connectionString, string name, TimeProvider? clock = null) : LockNServerFixture
    {
        protected override bool WaitsForWhisper => false;

        protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
        {
            [LockNDatabase.ConfigurationKey] = connectionString,
            ["Node"] = name,
            ["Usage:FlushIntervalMilliseconds"] = "100",
        };

        protected override void ConfigureServices(IServiceCollection services)
        {
            if (clock is not null)
            {
                services.AddSingleton(clock);
            }
        }
    }

    [Fact]
    public async Task A_key_created_on_one_node_works_on_the_other_and_a_revocation_reaches_it_within_the_cache_time()
    {
        var database = await postgres.CreateDatabaseAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow); // both nodes read one clock, which only the test moves
        await using var a = new Node(database, "node-a", clock);
        await using var b = new Node(database, "node-b", clock);
        await a.InitializeAsync();
        await b.InitializeAsync();
        var cacheTime = TimeSpan.FromSeconds(b.Services.GetRequiredService<IOptions<KeysOptions>>().Value.CacheSeconds);

        using var created = await a.Client.PostAsJsonAsync("/admin/keys", new { name = "shared", scopes = new[] { "transcribe" } });
        var body = await created.Content.ReadFromJsonAsync<JsonElement>();
        var key = body.GetProperty("key").GetString()!;
        var usedOnB = await SendAsync(b, key);
        using var revoked = await a.Client.DeleteAsync($"/admin/keys/{body.GetProperty("id").GetString()}");
        var refusedOnA = await SendAsync(a, key);
        clock.Advance(cacheTime - TimeSpan.FromMilliseconds(1));
        var cachedOnB = await SendAsync(b, key);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        var refusedOnB = await SendAsync(b, key);

        Assert.Equal(HttpStatusCode.OK, usedOnB);
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, refusedOnA);
        Assert.Equal(HttpStatusCode.OK, cachedOnB); // node B cannot know before its cache expires
        Assert.Equal(HttpStatusCode.Unauthorized, refusedOnB);
    }

    [Fact]
    public async Task Usage_from_both_nodes_appears_in_the_report()
    {
        var database = await postgres.CreateDatabaseAsync();
        var a = new Node(database, "node-a");
        var b = new Node(database, "node-b");
        await a.InitializeAsync();
        await b.InitializeAsync();
        const int PerNode = 7;
        for (var i = 0; i < PerNode; i++)
        {
            using var fromA = await a.Client.GetAsync("/v1/models");
            using var fromB = await b.Client.GetAsync("/v1/models");
        }

        await a.DisposeAsyncKeepingData(); // graceful: each node flushes its ledger
        await b.DisposeAsyncKeepingData();
        await using var reader = new Node(database, "reader");
        await reader.InitializeAsync();
        var report = await reader.Client.GetFromJsonAsync<JsonElement>("/admin/usage?group_by=model");
        await using var db = LockNDatabase.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Db"] = database }).Build()).Open();
        var byNode = db.Usage.GroupBy(u => u.Node).Select(g => new { g.Key, Count = g.Count() }).ToDictionary(g => g.Key, g => g.Count);

        Assert.Equal(PerNode, byNode["node-a"]);
        Assert.Equal(PerNode, byNode["node-b"]);
        Assert.Equal(2 * PerNode, report.GetProperty("data").EnumerateArray().Sum(row => row.GetProperty("requests").GetInt32()));
    }

    private static async Task<HttpStatusCode> SendAsync(LockNServerFixture node, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };
        using var response = await node.AnonymousClient.SendAsync(request);
        return response.StatusCode;
    }
}
