using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LockN.Http;
using LockN.Keys;
using LockN.Storage;
using Microsoft.Extensions.Options;
using Spectre.Console;

namespace LockN.Cli;

/// <summary>
/// <c>lockn keys create|list|revoke</c>: manages API keys straight in the configured database (LOCKN_DB or the
/// SQLite file in the data directory), for operators on the machine and for scripts.
/// </summary>
internal static class KeysCommand
{
    public static Command Create(IConfiguration configuration)
    {
        var command = new Command("keys", "Create, list and revoke API keys");
        command.Subcommands.Add(CreateKey(configuration));
        command.Subcommands.Add(ListKeys(configuration));
        command.Subcommands.Add(RevokeKey(configuration));
        return command;
    }

    private static Command CreateKey(IConfiguration configuration)
    {
        var name = new Option<string>("--name") { Required = true, Description = "What the key is for" };
        var scopes = new Option<string>("--scopes") { DefaultValueFactory = _ => ApiKeyScopes.Transcribe, Description = $"Comma-separated: {string.Join(", ", ApiKeyScopes.All)}" };
        var expiresInDays = new Option<double?>("--expires-in-days") { Description = "Expire after this many days (default: never)" };
        var rpm = new Option<int?>("--requests-per-minute") { Description = "Per-key request rate limit (default: Keys:DefaultRequestsPerMinute)" };
        var concurrency = new Option<int?>("--max-concurrent") { Description = "Per-key limit on requests in flight (default: Keys:DefaultMaxConcurrentRequests)" };
        var json = new Option<bool>("--json") { Description = "Print the new key as JSON (for scripts)" };
        var command = new Command("create", "Create a key; its secret is shown once") { name, scopes, expiresInDays, rpm, concurrency, json };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var body = new CreateKeyBody(parse.GetValue(name), parse.GetValue(scopes)!.Split(','), null, parse.GetValue(expiresInDays), parse.GetValue(rpm), parse.GetValue(concurrency));
            var (request, error) = KeysApi.Validate(body, DateTimeOffset.UtcNow);
            if (error is not null)
            {
                await Console.Error.WriteLineAsync($"lockn: {error.Message}");
                return 2;
            }

            return await WithStoreAsync(configuration, async store =>
            {
                var created = await store.CreateAsync(request!, cancellationToken);
                if (parse.GetValue(json))
                {
                    Console.WriteLine(JsonSerializer.Serialize(ApiKeyResource.From(created), LockNJsonContext.Default.ApiKeyResource));
                }
                else
                {
                    Console.WriteLine($"Created {created.Id} ({created.Name}, scopes {string.Join(' ', created.Scopes)}). The key, shown once:");
                    Console.WriteLine(created.Key);
                }

                return 0;
            });
        });
        return command;
    }

    private static Command ListKeys(IConfiguration configuration)
    {
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var command = new Command("list", "List keys (never their secrets)") { json };
        command.SetAction(async (parse, cancellationToken) => await WithStoreAsync(configuration, async store =>
        {
            var keys = await store.ListAsync(cancellationToken);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(keys.Select(ApiKeyResource.From).ToArray(), LockNJsonContext.Default.ApiKeyResourceArray));
                return 0;
            }

            var table = new Table().AddColumns("id", "name", "scopes", "created", "expires", "state", "last used");
            foreach (var key in keys)
            {
                var state = key.RevokedAt is not null ? "revoked" : key.ExpiresAt <= DateTimeOffset.UtcNow ? "expired" : "active";
                table.AddRow(Markup.Escape(key.Id), Markup.Escape(key.Name), string.Join(' ', key.Scopes), Date(key.CreatedAt), Date(key.ExpiresAt), state, Date(key.LastUsedAt));
            }

            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    private static Command RevokeKey(IConfiguration configuration)
    {
        var id = new Argument<string>("id") { Description = "The key's id (key_…), from `lockn keys list`" };
        var command = new Command("revoke", "Revoke a key; every node refuses it within Keys:CacheSeconds") { id };
        command.SetAction(async (parse, cancellationToken) => await WithStoreAsync(configuration, async store =>
        {
            if (await store.RevokeAsync(parse.GetValue(id)!, cancellationToken) is not { } revoked)
            {
                await Console.Error.WriteLineAsync($"lockn: no key with id '{parse.GetValue(id)}'");
                return 1;
            }

            Console.WriteLine($"Revoked {revoked.Id} ({revoked.Name}).");
            return 0;
        }));
        return command;
    }

    private static async Task<int> WithStoreAsync(IConfiguration configuration, Func<ApiKeyStore, Task<int>> action)
    {
        try
        {
            Directory.CreateDirectory(Hosting.LockNConfiguration.DataDirectory(configuration));
            var database = LockNDatabase.FromConfiguration(configuration);
            await database.MigrateAsync(CancellationToken.None);
            var options = Options.Create(configuration.GetSection(KeysOptions.Section).Get<KeysOptions>() ?? new KeysOptions());
            return await action(new ApiKeyStore(database, new ApiKeyHasher(options), options, TimeProvider.System));
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or System.Data.Common.DbException)
        {
            await Console.Error.WriteLineAsync($"lockn: {ex.GetBaseException().Message}");
            return 1;
        }
    }

    private static string Date(DateTimeOffset? time) => time?.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) ?? "-";
}
