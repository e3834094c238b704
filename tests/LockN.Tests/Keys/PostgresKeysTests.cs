using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Storage;
using LockN.Tests.Storage;

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

    private static async Task<HttpStatusCode> SendAsync(LockNServerFixture node, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };
        using var response = await node.AnonymousClient.SendAsync(request);
        return response.StatusCode;
    }
}
