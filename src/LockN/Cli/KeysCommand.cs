using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LockN.Hosting;
using LockN.Http;
using LockN.Keys;
using LockN.Storage;
using Spectre.Console;

namespace LockN.Cli;

/// <summary>
/// <c>lockn keys create|list|revoke</c>: manages API keys straight in the configured database (LOCKN_DB or the
/// SQLite file in the data directory), for operators on the machine and for scripts.
/// </summary>
internal static class KeysCommand
{
    public static Command Create()
    {
        var command = new Command("keys", "Create, list and revoke API keys");
        command.Subcommands.Add(CreateKey());
        command.Subcommands.Add(ListKeys());
        command.Subcommands.Add(RevokeKey());
        return command;
    }

    private static Command CreateKey()
    {
        var name = new Option<string>("--name") { Required = true, Description = "What the key is for" };
        var scopes = new Option<string>("--scopes") { DefaultValueFactory = _ => ApiKeyScopes.Transcribe, Description = $"Comma-separated: {string.Join(", ", ApiKeyScopes.All)}" };
        var expiresInDays = new Option<double?>("--expires-in-days") { Description = "Expire after this many days (default: never)" };
        var rpm = new Option<int?>("--requests-per-minute") { Description = "Per-key request rate limit (default: Keys:DefaultRequestsPerMinute)" };
        var concurrency = new Option<int?>("--max-concurrent") { Description = "Per-key limit on requests in flight (default: Keys:DefaultMaxConcurrentRequests)" };
        var json = new Option<bool>("--json") { Description = "Print the new key as JSON (for scripts)" };
        var data = CommandHost.DataOption();
        var command = new Command("create", "Create a key; its secret is shown once") { name, scopes, expiresInDays, rpm, concurrency, json, data };
        command.SetAction((parse, cancellationToken) => WithStoreAsync(parse, data, async (store, time) =>
        {
            var body = new CreateKeyBody(parse.GetValue(name), parse.GetValue(scopes)!.Split(','), null, parse.GetValue(expiresInDays), parse.GetValue(rpm), parse.GetValue(concurrency));
            var (request, error) = KeysApi.Validate(body, time.GetUtcNow());
            if (error is not null)
            {
                await Console.Error.WriteLineAsync($"lockn: {error.Message}");
                return 2;
            }

            var created = await store.CreateAsync(request!, cancellationToken);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(ApiKeyResource.From(created), LockNJson.Context.ApiKeyResource));
            }
            else
            {
                Console.WriteLine($"Created {created.Id} ({created.Name}, scopes {string.Join(' ', created.Scopes)}). The key, shown once:");
                Console.WriteLine(created.Key);
            }

            return 0;
        }, cancellationToken));
        return command;
    }

    private static Command ListKeys()
    {
        var json = new Option<bool>("--json") { Description = "Print JSON" };
        var data = CommandHost.DataOption();
        var command = new Command("list", "List keys (never their secrets)") { json, data };
        command.SetAction((parse, cancellationToken) => WithStoreAsync(parse, data, async (store, time) =>
        {
            var keys = await store.ListAsync(cancellationToken);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(keys.Select(ApiKeyResource.From).ToArray(), LockNJson.Context.ApiKeyResourceArray));
                return 0;
            }

            var now = time.GetUtcNow();
            var table = new Table().AddColumns("id", "name", "scopes", "created", "expires", "state", "last used");
            foreach (var key in keys)
            {
                var state = key.RevokedAt is not null ? "revoked" : key.ExpiresAt <= now ? "expired" : "active";
                table.AddRow(Markup.Escape(key.Id), Markup.Escape(key.Name), string.Join(' ', key.Scopes), Date(key.CreatedAt), Date(key.ExpiresAt), state, Date(key.LastUsedAt));
            }

            AnsiConsole.Write(table);
            return 0;
        }, cancellationToken));
        return command;
    }

    private static Command RevokeKey()
    {
        var id = new Argument<string>("id") { Description = "The key's id (key_…), from `lockn keys list`" };
        var data = CommandHost.DataOption();
        var command = new Command("revoke", "Revoke a key; every node refuses it within Keys:CacheSeconds") { id, data };
        command.SetAction((parse, cancellationToken) => WithStoreAsync(parse, data, async (store, _) =>
        {
            if (await store.RevokeAsync(parse.GetValue(id)!, cancellationToken) is not { } revoked)
            {
                await Console.Error.WriteLineAsync($"lockn: no key with id '{parse.GetValue(id)}'");
                return 1;
            }

            Console.WriteLine($"Revoked {revoked.Id} ({revoked.Name}).");
            return 0;
        }, cancellationToken));
        return command;
    }

    /// <summary>Runs <paramref name="action"/> on the key store of the configured database, migrated as serve does.</summary>
    private static Task<int> WithStoreAsync(ParseResult parse, Option<string?> data, Func<ApiKeyStore, TimeProvider, Task<int>> action, CancellationToken cancellationToken) => CommandHost.RunAsync(
        new Dictionary<string, string?> { [LockNConfiguration.DataKey] = parse.GetValue(data) },
        (services, configuration) => services.AddStorage(configuration).AddKeys(configuration),
        async host =>
        {
            try
            {
                await host.OpenDatabaseAsync(cancellationToken);
                return await action(host.Get<ApiKeyStore>(), host.Time);
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or System.Data.Common.DbException)
            {
                await Console.Error.WriteLineAsync($"lockn: {ex.GetBaseException().Message}");
                return 1;
            }
        });

    private static string Date(DateTimeOffset? time) => time?.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) ?? "-";
}
