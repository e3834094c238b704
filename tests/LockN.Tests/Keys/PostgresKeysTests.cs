using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Storage;
using LockN.Tests.Storage;
using Microsoft.Extensions.Configuration;

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
    private sealed class Node(string connectionString, string name) : LockNServerFixture
    {
        protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
        {
            [LockNDatabase.ConfigurationKey] = connectionString,
            ["Node"] = name,
            ["Usage:FlushIntervalMilliseconds"] = "100",
        };
    }

    [Fact]
    public async Task A_key_created_on_one_node_works_on_the_other_and_a_revocation_reaches_it_within_5s()
    {
        var database = await postgres.CreateDatabaseAsync();
        await using var a = new Node(database, "node-a");
        await using var b = new Node(database, "node-b");
        await a.InitializeAsync();
        await b.InitializeAsync();

        using var created = await a.Client.PostAsJsonAsync("/admin/keys", new { name = "shared", scopes = new[] { "transcribe" } });
        var body = await created.Content.ReadFromJsonAsync<JsonElement>();
        var key = body.GetProperty("key").GetString()!;
        var usedOnB = await SendAsync(b, key);
        using var revoked = await a.Client.DeleteAsync($"/admin/keys/{body.GetProperty("id").GetString()}");
        var revokedAt = Stopwatch.StartNew();
        var refusedOnA = await SendAsync(a, key);
        while (await SendAsync(b, key) == HttpStatusCode.OK && revokedAt.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50);
        }

        var refusedOnBAfter = revokedAt.Elapsed;

        Assert.Equal(HttpStatusCode.OK, usedOnB);
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, refusedOnA);
        Assert.True(refusedOnBAfter < TimeSpan.FromSeconds(5), $"node B still accepted the revoked key {refusedOnBAfter.TotalSeconds:0.0} s later");
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
