using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Keys;
using LockN.Tests.Dispatch;

namespace LockN.Tests.Keys;

/// <summary>
/// A server whose failure throttle stays out of the way of a test that fails on purpose many times, with a
/// llama-server stand-in as backend so the chat routes answer too.
/// </summary>
public class KeysServerFixture : LockNServerFixture
{
    protected override bool WaitsForWhisper => false; // no test here needs a transcript before its first request

    private LlamaServerStandIn? standIn;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Keys:FailedAttemptsPerMinute"] = "100000",
        ["Keys:LastUsedFlushSeconds"] = "1",
        ["Dispatch:Backends:0:Name"] = "chat",
        ["Dispatch:Backends:0:Url"] = standIn?.BaseAddress.ToString(),
        ["Dispatch:Backends:0:Models:0"] = DispatchServerFixture.Model,
    };

    public override async ValueTask InitializeAsync()
    {
        standIn = await LlamaServerStandIn.StartAsync(slots: 4, TimeSpan.Zero);
        await base.InitializeAsync();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (standIn is not null)
        {
            await standIn.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Creates a key straight in the store (which, unlike the API, accepts an expiry in the past).</summary>
    public async Task<string> CreateKeyAsync(string[] scopes, DateTimeOffset? expiresAt = null, bool revoked = false)
    {
        var store = Services.GetRequiredService<ApiKeyStore>();
        var created = await store.CreateAsync(new ApiKeyRequest("test", scopes, expiresAt, null, null), CancellationToken.None);
        if (revoked)
        {
            await store.RevokeAsync(created.Id, CancellationToken.None);
        }

        return created.Key!;
    }
}

/// <summary>Every route × every kind of credential: 401 for anything but a live key, 403 for a missing scope.</summary>
public class AuthorizationMatrixTests(KeysServerFixture server) : IClassFixture<KeysServerFixture>
{
    private static readonly byte[] ShortWav = TestAudio.NoiseWav(1.5);

    /// <summary>A route, the scope it needs (null: any valid key) and how to call it.</summary>
    public sealed record Route(string Name, string? Scope, Func<KeysServerFixture, Task<HttpRequestMessage>> Request)
    {
        public override string ToString() => Name;
    }

    public static readonly Route[] Routes =
    [
        new("GET /v1/models", null, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Get, "/v1/models"))),
        new("GET /v1/models/{id}", null, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Get, "/v1/models/whisper-tiny.en"))),
        new("POST /v1/audio/transcriptions", ApiKeyScopes.Transcribe, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Post, "/v1/audio/transcriptions")
        {
            Content = TestAudio.Form(ShortWav, "a.wav", ("model", "whisper-tiny.en")),
        })),
        new("POST /v1/audio/translations", ApiKeyScopes.Transcribe, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Post, "/v1/audio/translations")
        {
            Content = TestAudio.Form(ShortWav, "a.wav", ("model", "whisper-tiny")),
        })),
        new("POST /v1/audio/classifications", ApiKeyScopes.Classify, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Post, "/v1/audio/classifications")
        {
            Content = TestAudio.Form(ShortWav, "a.wav"),
        })),
        new("POST /v1/chat/completions", ApiKeyScopes.Chat, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = DispatchServerFixture.Model, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 1 }),
        })),
        new("POST /v1/embeddings", ApiKeyScopes.Chat, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Post, "/v1/embeddings")
        {
            Content = JsonContent.Create(new { model = DispatchServerFixture.Model, input = "hi" }),
        })),
        new("GET /admin/backends", ApiKeyScopes.Admin, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Get, "/admin/backends"))),
        new("GET /admin/usage", ApiKeyScopes.Admin, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Get, "/admin/usage?group_by=model"))),
        new("GET /admin/keys", ApiKeyScopes.Admin, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Get, "/admin/keys"))),
        new("POST /admin/keys", ApiKeyScopes.Admin, _ => Task.FromResult(new HttpRequestMessage(HttpMethod.Post, "/admin/keys")
        {
            Content = JsonContent.Create(new { name = "matrix", scopes = new[] { "transcribe" } }),
        })),
        new("GET /admin/keys/{id}", ApiKeyScopes.Admin, async fixture => new HttpRequestMessage(HttpMethod.Get, $"/admin/keys/{await ThrowawayKeyIdAsync(fixture)}")),
        new("DELETE /admin/keys/{id}", ApiKeyScopes.Admin, async fixture => new HttpRequestMessage(HttpMethod.Delete, $"/admin/keys/{await ThrowawayKeyIdAsync(fixture)}")),
    ];

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var route in Routes)
        {
            foreach (var credential in new[] { "no key", "malformed", "unknown", "revoked", "expired", "wrong scope", "right scope" })
            {
                if (credential == "wrong scope" && route.Scope is null)
                {
                    continue; // any valid key may call it: there is no wrong scope
                }

                data.Add(route.Name, credential);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_route_admits_only_a_live_key_with_its_scope(string routeName, string credential)
    {
        var route = Routes.Single(r => r.Name == routeName);
        var otherScope = ApiKeyScopes.All.First(scope => scope != route.Scope && scope != ApiKeyScopes.Admin);
        var key = credential switch
        {
            "no key" => null,
            "malformed" => "sk-this-is-not-a-lockn-key",
            "unknown" => ApiKeySecret.Generate().Key,
            "revoked" => await server.CreateKeyAsync([.. ApiKeyScopes.All], revoked: true),
            "expired" => await server.CreateKeyAsync([.. ApiKeyScopes.All], DateTimeOffset.UtcNow.AddMinutes(-1)),
            "wrong scope" => await server.CreateKeyAsync([otherScope]),
            _ => await server.CreateKeyAsync([route.Scope ?? otherScope]),
        };
        using var request = await route.Request(server);
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        using var response = await server.AnonymousClient.SendAsync(request);

        var expected = credential switch
        {
            "right scope" => HttpStatusCode.OK,
            "wrong scope" => HttpStatusCode.Forbidden,
            _ => HttpStatusCode.Unauthorized,
        };
        var status = response.StatusCode == HttpStatusCode.Created ? HttpStatusCode.OK : response.StatusCode;
        Assert.True(expected == status, $"{routeName} with {credential}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        if (expected != HttpStatusCode.OK)
        {
            var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
            Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
            Assert.Equal(expected == HttpStatusCode.Forbidden ? "permission_error" : "invalid_request_error", error.GetProperty("type").GetString());
            if (key is not null && ApiKeySecret.TryParse(key, out _, out var secret))
            {
                Assert.DoesNotContain(secret, error.GetProperty("message").GetString()!, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task The_key_is_also_accepted_in_x_api_key()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Add("X-API-Key", await server.CreateKeyAsync([ApiKeyScopes.Transcribe]));

        using var response = await server.AnonymousClient.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Health_needs_no_key()
    {
        using var live = await server.AnonymousClient.GetAsync("/health/live");
        // This fixture does not wait for the default model: readiness is 503 until it loads, but never asks for a key.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        HttpStatusCode ready;
        do
        {
            using var response = await server.AnonymousClient.GetAsync("/health/ready");
            ready = response.StatusCode;
            Assert.NotEqual(HttpStatusCode.Unauthorized, ready);
            if (ready != HttpStatusCode.OK)
            {
                await Task.Delay(100);
            }
        }
        while (ready != HttpStatusCode.OK && DateTime.UtcNow < deadline);

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready);
    }

    private static async Task<string> ThrowawayKeyIdAsync(KeysServerFixture fixture)
    {
        var store = fixture.Services.GetRequiredService<ApiKeyStore>();
        return (await store.CreateAsync(new ApiKeyRequest("throwaway", [ApiKeyScopes.Transcribe], null, null, null), CancellationToken.None)).Id;
    }
}

/// <summary>Keys:Required off: the /v1 endpoints open, /admin still closed.</summary>
public sealed class OpenServerFixture : LockNServerFixture
{
    protected override bool WaitsForWhisper => false; // no test here needs a transcript before its first request

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Keys:Required"] = "false" };
}

public class KeysNotRequiredTests(OpenServerFixture server) : IClassFixture<OpenServerFixture>
{
    [Fact]
    public async Task With_keys_not_required_v1_is_open_but_admin_is_not()
    {
        using var models = await server.AnonymousClient.GetAsync("/v1/models");
        using var admin = await server.AnonymousClient.GetAsync("/admin/keys");

        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, admin.StatusCode);
        Assert.Contains(server.Logs.Lines, line => line.Contains("Keys:Required is false", StringComparison.Ordinal));
    }
}
