using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LockN.Tests.WebConsole;

/// <summary>A server for the console's tests: sessions re-read their key every 0.3 s.</summary>
public sealed class ConsoleServerFixture : LockNServerFixture
{
    protected override bool WaitsForWhisper => false;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Keys:CacheSeconds"] = "0.3" };
}

/// <summary>Sign-in, sessions and the headers of LockN's own pages, over plain HTTP against the real server.</summary>
public class ConsoleSecurityTests(ConsoleServerFixture server) : IClassFixture<ConsoleServerFixture>
{
    [Theory]
    [InlineData("/")]
    [InlineData("/denied")]
    public async Task A_console_page_without_a_session_redirects_to_sign_in(string path)
    {
        using var browser = new ConsoleSession(server.BaseAddress);
        using var response = await browser.Client.GetAsync(path);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/sign-in", response.Headers.Location!.AbsolutePath);
        Assert.Contains("returnUrl=" + Uri.EscapeDataString(path), response.Headers.Location.Query, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/sign-in")]
    [InlineData("/pacman")]
    public async Task Sign_in_and_the_game_need_no_key(string path)
    {
        using var browser = new ConsoleSession(server.BaseAddress);
        using var response = await browser.Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_valid_key_opens_a_session_whose_cookie_is_http_only_and_same_site_strict_and_never_holds_the_key()
    {
        var key = await CreateKeyAsync("transcribe");
        using var browser = new ConsoleSession(server.BaseAddress);
        using var signedIn = await browser.SignInAsync(key, returnUrl: "/");

        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        Assert.Equal("/", signedIn.Headers.Location!.OriginalString.Replace(server.BaseAddress.ToString().TrimEnd('/'), "", StringComparison.Ordinal));
        var cookie = signedIn.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("lockn_console=", StringComparison.Ordinal));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(key, cookie, StringComparison.Ordinal);
        Assert.DoesNotContain(key[..12], cookie, StringComparison.Ordinal);

        var overview = await browser.Client.GetStringAsync("/");
        Assert.Contains("Overview", overview, StringComparison.Ordinal);
        Assert.Contains("whisper-tiny.en", overview, StringComparison.Ordinal);
        Assert.DoesNotContain(key, overview, StringComparison.Ordinal);
        Assert.DoesNotContain(server.Logs.Lines, line => line.Contains(key, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_wrong_key_is_refused_in_words_without_a_session()
    {
        var unknown = LockN.Keys.ApiKeySecret.Generate().Key; // well formed, never stored
        using var browser = new ConsoleSession(server.BaseAddress);
        using var refused = await browser.SignInAsync(unknown);
        var page = await refused.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("No such key", page, StringComparison.Ordinal);
        Assert.DoesNotContain(browser.Cookies, c => c.Name == "lockn_console");
        Assert.DoesNotContain(unknown[..12], page, StringComparison.Ordinal); // the pasted key is not echoed

        using var malformed = await browser.SignInAsync("not a key");
        Assert.Contains("not a LockN key", await malformed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_form_post_without_the_pages_antiforgery_token_is_refused()
    {
        var key = await CreateKeyAsync("transcribe");
        using var crossSite = new ConsoleSession(server.BaseAddress);
        using var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["Key"] = key, ["_handler"] = "sign-in" });
        using var response = await crossSite.Client.PostAsync("/sign-in", form);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.DoesNotContain(crossSite.Cookies, c => c.Name == "lockn_console");
    }

    [Fact]
    public async Task Sign_in_never_sends_a_fresh_session_to_another_site()
    {
        var key = await CreateKeyAsync("transcribe");
        foreach (var returnUrl in new[] { "//evil.example/", "/\\evil.example", "https://evil.example/" })
        {
            using var browser = new ConsoleSession(server.BaseAddress);
            using var signedIn = await browser.SignInAsync(key, returnUrl);
            Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
            Assert.Equal(server.BaseAddress.Authority, new Uri(server.BaseAddress, signedIn.Headers.Location!).Authority);
        }
    }

    [Fact]
    public async Task A_revoked_key_ends_its_session_within_the_key_cache_time()
    {
        var (key, id) = await CreateKeyWithIdAsync("transcribe");
        using var browser = new ConsoleSession(server.BaseAddress);
        (await browser.SignInAsync(key)).Dispose();
        using (var before = await browser.Client.GetAsync("/"))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        (await server.Client.DeleteAsync($"/admin/keys/{id}")).EnsureSuccessStatusCode();
        await Task.Delay(TimeSpan.FromSeconds(0.6)); // Keys:CacheSeconds is 0.3 here
        using var after = await browser.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        Assert.Equal("/sign-in", after.Headers.Location!.AbsolutePath);
    }

    [Fact]
    public async Task Signing_out_ends_the_session()
    {
        var key = await CreateKeyAsync("transcribe");
        using var browser = new ConsoleSession(server.BaseAddress);
        (await browser.SignInAsync(key)).Dispose();
        var token = await browser.AntiforgeryTokenAsync("/");
        using var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token });
        using var signedOut = await browser.Client.PostAsync("/sign-out", form);

        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
        using var after = await browser.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
    }

    [Fact]
    public async Task Console_pages_carry_a_content_security_policy_and_the_api_keeps_its_json_errors()
    {
        using var browser = new ConsoleSession(server.BaseAddress);
        using var page = await browser.Client.GetAsync("/sign-in");
        var policy = string.Join("; ", page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self'", policy, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-eval", policy, StringComparison.Ordinal);

        using var api = await server.AnonymousClient.GetAsync("/v1/nothing-here");
        Assert.Equal(HttpStatusCode.NotFound, api.StatusCode);
        Assert.Equal("not_found", (await api.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());
    }

    private async Task<string> CreateKeyAsync(string scope) => (await CreateKeyWithIdAsync(scope)).Key;

    private async Task<(string Key, string Id)> CreateKeyWithIdAsync(string scope)
    {
        using var response = await server.Client.PostAsJsonAsync("/admin/keys", new { name = "console-" + scope, scopes = new[] { scope } });
        var created = await response.Content.ReadFromJsonAsync<JsonElement>();
        return (created.GetProperty("key").GetString()!, created.GetProperty("id").GetString()!);
    }
}
