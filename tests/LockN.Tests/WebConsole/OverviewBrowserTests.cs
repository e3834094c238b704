using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;

namespace LockN.Tests.WebConsole;

/// <summary>The Overview page in a real browser, against a real server: live without a reload.</summary>
public class OverviewBrowserTests(ConsoleServerFixture server, Chromium chromium) : IClassFixture<ConsoleServerFixture>, IClassFixture<Chromium>
{
    [Fact]
    public async Task Signing_in_shows_the_overview_and_a_slot_goes_busy_during_a_long_transcription_and_free_after_without_a_reload()
    {
        await using var context = await chromium.NewContextAsync(server.BaseAddress);
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                errors.Add(message.Text);
            }
        };
        await SignInAsync(page, server.AdminKey);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Overview" })).ToBeVisibleAsync();
        var slots = page.Locator("tr[data-model='whisper-tiny.en'] [data-testid='slots']");
        await Assertions.Expect(slots).ToHaveTextAsync("0 / 1", new() { Timeout = 60_000 });
        await Chromium.ScreenshotAsync(page, "overview-1280x800");

        // A reload would make a fresh page: mark this one, and check the mark is still there at the end.
        await page.EvaluateAsync("() => window.__sameDocument = true");
        // The long request comes from a key of its own, so the slot's holder shows by that key's name.
        using var created = await server.Client.PostAsJsonAsync("/admin/keys", new { name = "night-batch", scopes = new[] { "transcribe" } });
        var batchKey = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
        using var batch = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        batch.DefaultRequestHeaders.Authorization = new("Bearer", batchKey);
        using var transcription = batch.PostAsync("/v1/audio/transcriptions", TestAudio.Form(TestAudio.NoiseWav(60), "minute.wav", ("model", "whisper-tiny.en")));
        await Assertions.Expect(slots).ToHaveTextAsync("1 / 1", new() { Timeout = 30_000 });
        var holders = page.Locator("tr[data-model='whisper-tiny.en'] [data-testid='holders']");
        await Assertions.Expect(holders).ToContainTextAsync("night-batch");
        await Assertions.Expect(holders).ToContainTextAsync("POST /v1/audio/transcriptions");
        await Chromium.ScreenshotAsync(page, "overview-busy-1280x800");
        (await transcription).EnsureSuccessStatusCode();
        await Assertions.Expect(slots).ToHaveTextAsync("0 / 1", new() { Timeout = 10_000 });
        await Assertions.Expect(holders).ToHaveCountAsync(0);

        Assert.True(await page.EvaluateAsync<bool>("() => window.__sameDocument === true"), "the page was reloaded");
        Assert.Empty(errors); // nothing blocked by the Content-Security-Policy, no missing file, no circuit error
    }

    [Fact]
    public async Task The_overview_fits_a_phone_screen()
    {
        await using var context = await chromium.NewContextAsync(server.BaseAddress, 390, 844, phone: true);
        var page = await context.NewPageAsync();
        await SignInAsync(page, server.AdminKey);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Overview" })).ToBeVisibleAsync();
        await Chromium.ScreenshotAsync(page, "overview-390x844");

        // The page itself never scrolls sideways; wide tables scroll inside their own box.
        var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth");
        Assert.True(overflow <= 0, $"the page is {overflow} px wider than the phone's screen");
    }

    internal static async Task SignInAsync(IPage page, string key)
    {
        await page.GotoAsync("/");
        Assert.EndsWith("/sign-in?returnUrl=%2F", page.Url, StringComparison.Ordinal); // no session: sent to sign in
        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == "/");
        Assert.DoesNotContain(key, page.Url, StringComparison.Ordinal);
    }
}
