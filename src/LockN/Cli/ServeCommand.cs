using System.CommandLine;
using LockN.Hosting;
using LockN.Models;

namespace LockN.Cli;

/// <summary><c>lockn serve [--urls URL] [--models DIR] [--data DIR]</c>: runs the HTTP service.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var urls = new Option<string?>("--urls") { Description = $"Listen address(es), ';'-separated (env LOCKN_URLS; default {LockNConfiguration.DefaultUrls})" };
        var models = CommandHost.ModelsOption();
        var data = CommandHost.DataOption();
        var command = new Command("serve", "Run the OpenAI-compatible HTTP service") { urls, models, data };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var overrides = new Dictionary<string, string?>
            {
                [LockNConfiguration.UrlsKey] = parse.GetValue(urls),
                [ModelDirectories.ConfigurationKey] = parse.GetValue(models),
                [LockNConfiguration.DataKey] = parse.GetValue(data),
            };
            try
            {
                await using var app = LockNServer.Build(overrides);
                // Before the host starts, so a setting the binder cannot read is this one line, not a logged stack trace.
                ValidatedOptions.ValidateNow(app.Services);
                await app.RunAsync(cancellationToken);
                return 0;
            }
            catch (Exception ex) when (ValidatedOptions.Describe(ex) is { } problem)
            {
                await Console.Error.WriteLineAsync($"lockn: invalid configuration: {problem}");
                return 2;
            }
            catch (Exception ex) when (ex is IOException or FormatException or UriFormatException or InvalidOperationException)
            {
                await Console.Error.WriteLineAsync($"lockn: cannot start: {ex.GetBaseException().Message}");
                return 1;
            }
        });
        return command;
    }
}
