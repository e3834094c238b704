using System.Text.Json;
using Microsoft.Playwright;

namespace LockN.Tests.WebConsole;

/// <summary>The real game at /pacman in Chromium: keys, touch swipes, pellets, ghosts. No key needed.</summary>
public class PacmanBrowserTests(ConsoleServerFixture server, Chromium chromium) : IClassFixture<ConsoleServerFixture>, IClassFixture<Chromium>
{
    [Fact]
    public async Task Arrow_keys_move_pac_man_who_eats_pellets_and_loses_a_life_to_a_ghost()
    {
        await using var context = await chromium.NewContextAsync(server.BaseAddress);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/pacman");
        var game = page.Locator("lockn-pacman");
        await game.FocusAsync();
        var start = await StateAsync(game);
        Assert.Equal("ready", start.GetProperty("status").GetString());
        Assert.Equal(3, start.GetProperty("lives").GetInt32());

        await page.Keyboard.PressAsync("ArrowLeft");
        var moved = await WaitForAsync(game, s => s.GetProperty("pacman").GetProperty("col").GetInt32() < start.GetProperty("pacman").GetProperty("col").GetInt32(), TimeSpan.FromSeconds(10));
        Assert.Equal("left", moved.GetProperty("pacman").GetProperty("dir").GetString());
        var fed = await WaitForAsync(game, s => s.GetProperty("score").GetInt32() > 0, TimeSpan.FromSeconds(10));
        Assert.True(fed.GetProperty("pelletsLeft").GetInt32() < start.GetProperty("pelletsLeft").GetInt32());
        await Chromium.ScreenshotAsync(page, "pacman-1280x800");

        // Pac-Man soon stops against a wall; a ghost comes for him.
        var caught = await WaitForAsync(game, s => s.GetProperty("lives").GetInt32() == 2, TimeSpan.FromSeconds(40));
        Assert.Equal(2, caught.GetProperty("lives").GetInt32());
    }

    [Fact]
    public async Task A_swipe_on_a_phone_turns_pac_man_and_the_game_fits_the_screen()
    {
        await using var context = await chromium.NewContextAsync(server.BaseAddress, 390, 844, phone: true);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/pacman");
        var game = page.Locator("lockn-pacman");
        var canvas = game.Locator("canvas");
        var box = (await canvas.BoundingBoxAsync())!;
        Assert.True(box.X >= 0 && box.X + box.Width <= 390, $"the maze is {box.Width} px wide at x={box.X} on a 390 px screen");

        var start = await StateAsync(game);
        await SwipeAsync(page, box, dx: -120, dy: 0); // left: starts the game and buffers the turn
        var moved = await WaitForAsync(game, s => s.GetProperty("pacman").GetProperty("dir").GetString() == "left", TimeSpan.FromSeconds(10));
        Assert.True(moved.GetProperty("pacman").GetProperty("col").GetInt32() <= start.GetProperty("pacman").GetProperty("col").GetInt32());
        await SwipeAsync(page, box, dx: 120, dy: 0); // right: reverses at once
        await WaitForAsync(game, s => s.GetProperty("pacman").GetProperty("dir").GetString() == "right", TimeSpan.FromSeconds(5));
        await Chromium.ScreenshotAsync(page, "pacman-390x844");
    }

    // A touch swipe as a finger makes it: pointer events of type touch, through the browser's input pipeline.
    private static async Task SwipeAsync(IPage page, LocatorBoundingBoxResult box, double dx, double dy)
    {
        var cdp = await page.Context.NewCDPSessionAsync(page);
        double x = box.X + (box.Width / 2), y = box.Y + (box.Height / 2);
        async Task Touch(string type, double atX, double atY) => await cdp.SendAsync("Input.dispatchTouchEvent", new Dictionary<string, object>
        {
            ["type"] = type,
            ["touchPoints"] = type == "touchEnd" ? Array.Empty<object>() : new object[] { new Dictionary<string, object> { ["x"] = atX, ["y"] = atY } },
        });
        await Touch("touchStart", x, y);
        for (var step = 1; step <= 5; step++)
        {
            await Touch("touchMove", x + (dx * step / 5), y + (dy * step / 5));
        }

        await Touch("touchEnd", x + dx, y + dy);
        await cdp.DetachAsync();
    }

    private static async Task<JsonElement> StateAsync(ILocator game) =>
        JsonDocument.Parse(await game.EvaluateAsync<string>("element => JSON.stringify(element.state())")).RootElement.Clone();

    private static async Task<JsonElement> WaitForAsync(ILocator game, Func<JsonElement, bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var state = await StateAsync(game);
            if (condition(state))
            {
                return state;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the game never got there within {timeout.TotalSeconds} s; last state {state}");
            await Task.Delay(50);
        }
    }
}
