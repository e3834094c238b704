using System.Net;
using System.Text.RegularExpressions;

namespace LockN.Tests.WebConsole;

/// <summary>A browser without a browser: an HTTP client with its own cookie jar that signs in through the console's form.</summary>
public sealed partial class ConsoleSession : IDisposable
{
    private readonly HttpClientHandler handler = new() { CookieContainer = new CookieContainer(), AllowAutoRedirect = false };

    public ConsoleSession(Uri baseAddress)
    {
        Client = new HttpClient(handler) { BaseAddress = baseAddress };
    }

    public HttpClient Client { get; }

    public CookieCollection Cookies => handler.CookieContainer.GetAllCookies();

    /// <summary>Posts the sign-in form with <paramref name="key"/>, as a browser that loaded the page would.</summary>
    public async Task<HttpResponseMessage> SignInAsync(string key, string? returnUrl = null)
    {
        var path = "/sign-in" + (returnUrl is null ? "" : "?returnUrl=" + Uri.EscapeDataString(returnUrl));
        var token = await AntiforgeryTokenAsync(path);
        using var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["Key"] = key, ["__RequestVerificationToken"] = token, ["_handler"] = "sign-in" });
        return await Client.PostAsync(path, form);
    }

    /// <summary>The antiforgery token a page's form carries (its cookie lands in the jar).</summary>
    public async Task<string> AntiforgeryTokenAsync(string path)
    {
        var page = await Client.GetStringAsync(path);
        return TokenField().Match(page) is { Success: true } match ? WebUtility.HtmlDecode(match.Groups[1].Value) : throw new InvalidOperationException($"{path} has no antiforgery token");
    }

    public void Dispose()
    {
        Client.Dispose();
        handler.Dispose();
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex TokenField();
}
