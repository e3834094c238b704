using Microsoft.Playwright;

namespace LockN.Tests.WebConsole;

/// <summary>
/// Debian's Chromium (<c>apt-get install chromium</c>), driven by Playwright; never a browser Playwright downloads.
/// One browser for the test class; each test opens its own context (cookies, viewport). Screenshots go to
/// <c>artifacts/console-screenshots</c> at the repository root, for a reviewer to look at.
/// </summary>
public sealed class Chromium : IAsyncLifetime
{
    public const string ExecutablePath = "/usr/bin/chromium";

    public static string ScreenshotDirectory { get; } = Path.Combine(TestAssets.RepositoryRoot, "artifacts", "console-screenshots");

    private IPlaywright? playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Assert.True(File.Exists(ExecutablePath), $"The console's browser tests need Chromium at {ExecutablePath}: apt-get install -y chromium");
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        playwright = await Playwright.CreateAsync();
        Browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"],
        });
        Directory.CreateDirectory(ScreenshotDirectory);
    }

    /// <summary>A fresh browser context at <paramref name="width"/>×<paramref name="height"/>, with the server as base.</summary>
    public Task<IBrowserContext> NewContextAsync(Uri baseAddress, int width = 1280, int height = 800, bool phone = false) =>
        Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = baseAddress.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
            HasTouch = phone,
            IsMobile = phone,
        });

    public static Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotDirectory, name + ".png"), FullPage = true });

    public async ValueTask DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        playwright?.Dispose();
    }
}
