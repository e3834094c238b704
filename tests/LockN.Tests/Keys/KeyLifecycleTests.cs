using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LockN.Keys;
using LockN.Storage;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace LockN.Tests.Keys;

/// <summary>
/// The server on a fake clock that only the test moves: key expiry, the key cache, the requests-per-minute window,
/// the failure throttle and the last-used flush all read it, so their rules are tested without sleeping.
/// </summary>
public class KeyClockServerFixture : LockNServerFixture
{
    protected override bool WaitsForWhisper => false; // no test here needs a transcript before its first request

    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Keys:FailedAttemptsPerMinute"] = "100000",
        ["Keys:LastUsedFlushSeconds"] = "1",
    };

    protected override void ConfigureServices(IServiceCollection services) => services.AddSingleton<TimeProvider>(Clock);
}

/// <summary>Five failed authentications a minute, so the throttle can be reached in a test.</summary>
public sealed class TightLimitsServerFixture : KeyClockServerFixture
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Keys:FailedAttemptsPerMinute"] = "5",
    };
}

public class KeyLifecycleTests(KeyClockServerFixture server) : IClassFixture<KeyClockServerFixture>
{
    private async Task<JsonElement> CreateViaApiAsync(object body)
    {
        using var response = await server.Client.PostAsJsonAsync("/admin/keys", body);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private static HttpRequestMessage ModelsRequest(string key) =>
        new(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };

    private async Task<HttpResponseMessage> SendAsync(string key) => await server.AnonymousClient.SendAsync(ModelsRequest(key));

    [Fact]
    public async Task A_created_key_is_shown_once_works_and_stops_working_when_revoked()
    {
        var created = await CreateViaApiAsync(new { name = "ci", scopes = new[] { "transcribe" }, expires_in_days = 30 });
        var key = created.GetProperty("key").GetString()!;
        var id = created.GetProperty("id").GetString()!;

        using var listed = await server.Client.GetAsync("/admin/keys");
        using var works = await SendAsync(key);
        using var revoked = await server.Client.DeleteAsync($"/admin/keys/{id}");
        using var refused = await SendAsync(key);

        Assert.StartsWith("lk_", key, StringComparison.Ordinal);
        Assert.Equal(["transcribe"], created.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(server.Clock.GetUtcNow().AddDays(30).ToUnixTimeSeconds(), created.GetProperty("expires_at").GetInt64());
        var listing = await listed.Content.ReadAsStringAsync();
        Assert.Contains(id, listing, StringComparison.Ordinal);
        Assert.DoesNotContain(key, listing, StringComparison.Ordinal);
        Assert.DoesNotContain("\"key\"", listing, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, works.StatusCode);
        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.Equal(server.Clock.GetUtcNow().ToUnixTimeSeconds(), (await revoked.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("revoked_at").GetInt64());
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("revoked", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_revoked_elsewhere_is_refused_once_the_key_cache_expires()
    {
        var created = await CreateViaApiAsync(new { name = "cached", scopes = new[] { "transcribe" } });
        var key = created.GetProperty("key").GetString()!;
        using var works = await SendAsync(key); // now in this node's cache

        // Revoked through a store of its own over the same database, as another node or `lockn keys revoke` does.
        var options = server.Services.GetRequiredService<IOptions<KeysOptions>>();
        var elsewhere = new ApiKeyStore(server.Services.GetRequiredService<LockNDatabase>(), server.Services.GetRequiredService<ApiKeyHasher>(), options, server.Clock);
        await elsewhere.RevokeAsync(created.GetProperty("id").GetString()!, CancellationToken.None);
        var cacheTime = TimeSpan.FromSeconds(options.Value.CacheSeconds);
        server.Clock.Advance(cacheTime - TimeSpan.FromMilliseconds(1));
        using var stillCached = await SendAsync(key);
        server.Clock.Advance(TimeSpan.FromMilliseconds(1));
        using var refused = await SendAsync(key);

        Assert.Equal(HttpStatusCode.OK, works.StatusCode);
        Assert.Equal(HttpStatusCode.OK, stillCached.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("revoked", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_is_refused_from_the_moment_it_expires()
    {
        var expiresAt = server.Clock.GetUtcNow().AddHours(1);
        var key = (await CreateViaApiAsync(new { name = "short-lived", scopes = new[] { "transcribe" }, expires_at = expiresAt.ToUnixTimeSeconds() }))
            .GetProperty("key").GetString()!;

        server.Clock.SetUtcNow(DateTimeOffset.FromUnixTimeSeconds(expiresAt.ToUnixTimeSeconds()).AddMilliseconds(-1));
        using var beforeExpiry = await SendAsync(key);
        server.Clock.Advance(TimeSpan.FromMilliseconds(1));
        using var atExpiry = await SendAsync(key);

        Assert.Equal(HttpStatusCode.OK, beforeExpiry.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, atExpiry.StatusCode);
        var error = (await atExpiry.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
        Assert.Contains("expired", error.GetProperty("message").GetString(), StringComparison.Ordinal);
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
        var usedAt = server.Clock.GetUtcNow();

        using var response = await SendAsync(created.Key!);
        var afterUse = await store.GetAsync(created.Id, CancellationToken.None);
        server.Clock.Advance(TimeSpan.FromSeconds(1)); // Keys:LastUsedFlushSeconds: the flush is due
        var afterFlush = await Eventually(async () => await store.GetAsync(created.Id, CancellationToken.None), key => key!.LastUsedAt is not null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(afterUse!.LastUsedAt);
        Assert.Equal(usedAt.ToUnixTimeMilliseconds(), afterFlush!.LastUsedAt!.Value.ToUnixTimeMilliseconds());
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
            last = await SendAsync(key);
            statuses.Add(last.StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], statuses);
        Assert.Equal(TimeSpan.FromMinutes(1), last!.Headers.RetryAfter?.Delta); // all three fell in the window's first segment
        var error = (await last.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("requests-per-minute", error.GetProperty("message").GetString(), StringComparison.Ordinal);
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
    public async Task A_key_over_its_requests_per_minute_is_allowed_again_once_the_minute_has_passed()
    {
        var key = (await CreateViaApiAsync(new { name = "patient", scopes = new[] { "transcribe" }, requests_per_minute = 2 })).GetProperty("key").GetString()!;
        using var first = await SendAsync(key);
        server.Clock.Advance(TimeSpan.FromSeconds(30));
        using var second = await SendAsync(key);
        using var refused = await SendAsync(key);

        server.Clock.Advance(TimeSpan.FromSeconds(29));
        using var stillRefused = await SendAsync(key);
        server.Clock.Advance(TimeSpan.FromSeconds(1)); // the first request leaves the window
        using var allowed = await SendAsync(key);
        using var refusedAgain = await SendAsync(key);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(30), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.TooManyRequests, stillRefused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), stillRefused.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, refusedAgain.StatusCode); // the second is still in the window
        Assert.Equal(TimeSpan.FromSeconds(30), refusedAgain.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task A_key_over_its_concurrency_limit_gets_429_while_its_first_request_runs()
    {
        var key = (await CreateViaApiAsync(new { name = "one-at-a-time", scopes = new[] { "transcribe" }, max_concurrent_requests = 1 })).GetProperty("key").GetString()!;

        // The first request's body never finishes arriving, so it holds the key's only permit. A raw socket makes
        // sure its headers are on the server before the second request is sent. A probe sent while the server was
        // still reading those headers can take the permit first and get the raw request refused: then start again.
        HttpResponseMessage second;
        System.Net.Sockets.TcpClient socket;
        var attempts = 0;
        while (true)
        {
            socket = new System.Net.Sockets.TcpClient();
            await socket.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
            var stream = socket.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {server.BaseAddress.Authority}\r\nAuthorization: Bearer {key}\r\n" +
                "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n"));
            await stream.FlushAsync();

            // Until the server has read those headers a second request may still get in; it must be refused soon after.
            second = await Eventually(async () => await SendAsync(key), response => response.StatusCode != HttpStatusCode.OK || stream.DataAvailable);
            if (second.StatusCode != HttpStatusCode.OK || ++attempts == 5)
            {
                break;
            }

            second.Dispose();
            socket.Dispose(); // the raw request was answered (refused): its permit race was lost
        }

        socket.Dispose();
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Contains("in flight", await second.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        second.Dispose();
    }

    /// <summary>Asks again until the answer satisfies <paramref name="done"/>, for work the server finishes after it has answered.</summary>
    internal static async Task<T> Eventually<T>(Func<Task<T>> ask, Func<T, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var answer = await ask();
            if (done(answer) || DateTime.UtcNow > deadline)
            {
                return answer;
            }

            (answer as IDisposable)?.Dispose();
            await Task.Delay(10);
        }
    }
}

public class FailedAuthenticationTests(TightLimitsServerFixture server) : IClassFixture<TightLimitsServerFixture>
{
    [Fact]
    public async Task Repeated_failures_from_one_address_are_throttled_with_429_until_their_minute_is_over()
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

        server.Clock.Advance(TimeSpan.FromSeconds(59));
        using var stillThrottled = await server.Client.GetAsync("/v1/models"); // even a good key: the address is throttled
        server.Clock.Advance(TimeSpan.FromSeconds(1));
        using var allowed = await server.Client.GetAsync("/v1/models");

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.Unauthorized, 5), HttpStatusCode.TooManyRequests], statuses);
        Assert.Equal(TimeSpan.FromMinutes(1), last!.Headers.RetryAfter?.Delta);
        Assert.Equal("too_many_failed_attempts", (await last.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());
        last.Dispose();
        Assert.Equal(HttpStatusCode.TooManyRequests, stillThrottled.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), stillThrottled.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }
}
