using System.CommandLine;
using LockN.Hosting;
using LockN.Models;
using Microsoft.Extensions.Options;

namespace LockN.Cli;

/// <summary><c>lockn serve [--urls URL] [--models DIR] [--data DIR]</c>: runs the HTTP service.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var urls = new Option<string?>("--urls") { Description = $"Listen address(es), ';'-separated (env LOCKN_URLS; default {LockNConfiguration.DefaultUrls})" };
        var models = new Option<string?>("--models") { Description = "Model directories searched recursively, ';'-separated (env LOCKN_MODELS)" };
        var data = new Option<string?>("--data") { Description = "Data directory (env LOCKN_DATA; default ./data)" };
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
                await app.RunAsync(cancellationToken);
                return 0;
            }
            catch (OptionsValidationException ex)
            {
                await Console.Error.WriteLineAsync($"lockn: invalid configuration: {string.Join("; ", ex.Failures)}");
                return 2;
            }
            catch (InvalidOperationException ex) when (ex.Message.Contains("configuration value", StringComparison.OrdinalIgnoreCase))
            {
                await Console.Error.WriteLineAsync($"lockn: invalid configuration: {ex.Message}");
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
