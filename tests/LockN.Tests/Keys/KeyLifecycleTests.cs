using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LockN.Keys;

namespace LockN.Tests.Keys;

/// <summary>Five failed authentications a minute, so the throttle can be reached in a test.</summary>
public sealed class TightLimitsServerFixture : LockNServerFixture
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Keys:FailedAttemptsPerMinute"] = "5",
    };
}

public class KeyLifecycleTests(KeysServerFixture server) : IClassFixture<KeysServerFixture>
{
    private async Task<JsonElement> CreateViaApiAsync(object body)
    {
        using var response = await server.Client.PostAsJsonAsync("/admin/keys", body);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private static HttpRequestMessage ModelsRequest(string key) =>
        new(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };

    [Fact]
    public async Task A_created_key_is_shown_once_works_and_stops_working_when_revoked()
    {
        var created = await CreateViaApiAsync(new { name = "ci", scopes = new[] { "transcribe" }, expires_in_days = 30 });
        var key = created.GetProperty("key").GetString()!;
        var id = created.GetProperty("id").GetString()!;

        using var listed = await server.Client.GetAsync("/admin/keys");
        using var works = await server.AnonymousClient.SendAsync(ModelsRequest(key));
        using var revoked = await server.Client.DeleteAsync($"/admin/keys/{id}");
        using var refused = await server.AnonymousClient.SendAsync(ModelsRequest(key));

        Assert.StartsWith("lk_", key, StringComparison.Ordinal);
        Assert.Equal(["transcribe"], created.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.True(created.GetProperty("expires_at").GetInt64() > DateTimeOffset.UtcNow.AddDays(29).ToUnixTimeSeconds());
        var listing = await listed.Content.ReadAsStringAsync();
        Assert.Contains(id, listing, StringComparison.Ordinal);
        Assert.DoesNotContain(key, listing, StringComparison.Ordinal);
        Assert.DoesNotContain("\"key\"", listing, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, works.StatusCode);
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.NotEqual(JsonValueKind.Null, (await revoked.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("revoked_at").ValueKind);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("revoked", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"scopes\":[\"transcribe\"]}", "name")]
    [InlineData("{\"name\":\"x\",\"scopes\":[\"sing\"]}", "scopes")]
    [InlineData("{\"name\":\"x\",\"scopes\":[]}", "scopes")]
    [InlineData("{\"name\":\"x\",\"scopes\":[\"admin\"],\"expires_at\":1}", "expires_at")]
    [InlineData("{\"name\":\"x\",\"scopes\":[\"admin\"],\"requests_per_minute\":0}", "requests_per_minute")]
    [InlineData("{\"name\":", null)]
    public async Task A_bad_create_request_is_400_naming_the_field(string body, string? param)
    {
        using var response = await server.Client.PostAsync("/admin/keys", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Last_used_is_written_in_batches()
    {
        var store = server.Services.GetRequiredService<ApiKeyStore>();
        var created = await store.CreateAsync(new ApiKeyRequest("used", [ApiKeyScopes.Transcribe], null, null, null), CancellationToken.None);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", created.Key) } };
        var before = DateTimeOffset.UtcNow;

        using var response = await server.AnonymousClient.SendAsync(request);
        var afterUse = await store.GetAsync(created.Id, CancellationToken.None);
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        var afterFlush = await store.GetAsync(created.Id, CancellationToken.None);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(afterUse!.LastUsedAt);
        Assert.InRange(afterFlush!.LastUsedAt!.Value, before.AddSeconds(-1), DateTimeOffset.UtcNow);
    }

    [Fact]
    public async Task Revoking_an_unknown_key_is_404()
    {
        using var response = await server.Client.DeleteAsync("/admin/keys/key_doesnotexist");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task A_key_over_its_requests_per_minute_gets_429_with_retry_after()
    {
        var key = (await CreateViaApiAsync(new { name = "slow", scopes = new[] { "transcribe" }, requests_per_minute = 3 })).GetProperty("key").GetString()!;
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? last = null;
        for (var i = 0; i < 4; i++)
        {
            last?.Dispose();
            last = await server.AnonymousClient.SendAsync(ModelsRequest(key));
            statuses.Add(last.StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
        Assert.True(last!.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        Assert.Equal("rate_limit_exceeded", (await last.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());
        last.Dispose();

        // Health probes are open: one that carries the exhausted key is still answered and spends nothing.
        for (var i = 0; i < 5; i++)
        {
            using var probe = new HttpRequestMessage(HttpMethod.Get, "/health/live");
            probe.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            using var answer = await server.AnonymousClient.SendAsync(probe);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }
    }

    [Fact]
    public async Task A_key_over_its_concurrency_limit_gets_429_while_its_first_request_runs()
    {
        var key = (await CreateViaApiAsync(new { name = "one-at-a-time", scopes = new[] { "transcribe" }, max_concurrent_requests = 1 })).GetProperty("key").GetString()!;

        // The first request's body never finishes arriving, so it holds the key's only permit. A raw socket makes
        // sure its headers are on the server before the second request is sent.
        using var socket = new System.Net.Sockets.TcpClient();
        await socket.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {server.BaseAddress.Authority}\r\nAuthorization: Bearer {key}\r\n" +
            "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n"));
        await stream.FlushAsync();
        await Task.Delay(300);

        using var second = await server.AnonymousClient.SendAsync(ModelsRequest(key));

        socket.Close();
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Contains("in flight", await second.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}

public class FailedAuthenticationTests(TightLimitsServerFixture server) : IClassFixture<TightLimitsServerFixture>
{
    [Fact]
    public async Task Repeated_failures_from_one_address_are_throttled_with_429()
    {
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? last = null;
        for (var i = 0; i < 6; i++)
        {
            last?.Dispose();
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", ApiKeySecret.Generate().Key) } };
            last = await server.AnonymousClient.SendAsync(request);
            statuses.Add(last.StatusCode);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.Unauthorized, 5), HttpStatusCode.TooManyRequests], statuses);
        Assert.True(last!.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal("too_many_failed_attempts", (await last.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());
        last.Dispose();
    }
}
