using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LockN.Hosting;
using Spectre.Console;

namespace LockN.Cli;

/// <summary>
/// <c>lockn backends list|start|stop|restart|drain|logs|add|remove</c>: runtime control of a running server's model
/// servers through its /admin/backends (an admin key: <c>--key</c> or LOCKN_API_KEY). Managed servers live in the
/// serving process, so this talks to it rather than to the database.
/// </summary>
internal static class BackendsCommand
{
    public static Command Create()
    {
        var command = new Command("backends", "List and control a running server's model servers (needs an admin key)");
        command.Subcommands.Add(List());
        foreach (var (action, description) in new[]
        {
            ("start", "Start a managed server (or clear a failure), or resume a drained backend"),
            ("stop", "Stop a managed server (SIGTERM, then SIGKILL after Dispatch:StopGraceSeconds)"),
            ("restart", "Restart a managed server"),
            ("drain", "Take no new requests; those in flight finish"),
        })
        {
            command.Subcommands.Add(Control(action, description));
        }

        command.Subcommands.Add(Logs());
        command.Subcommands.Add(Add());
        command.Subcommands.Add(Remove());
        return command;
    }

    private static Command List()
    {
        var json = new Option<bool>("--json") { Description = "Print the server's JSON" };
        var command = new Command("list", "Every backend with its state, process, slots and queue") { json };
        return WithServer(command, async (client, parse, cancellationToken) =>
        {
            using var response = await client.GetAsync("admin/backends", cancellationToken);
            if (await FailureAsync(response, cancellationToken) is { } failed)
            {
                return failed;
            }

            var list = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
            if (parse.GetValue(json))
            {
                Console.WriteLine(list.ToString());
                return 0;
            }

            // The columns that fit a terminal; --json has everything (models, router models, latencies, last start).
            var table = new Table().AddColumns("name", "state", "pid", "port", "uptime", "restarts", "slots", "queue", "last error");
            foreach (var backend in list.GetProperty("data").EnumerateArray())
            {
                var process = backend.GetProperty("process");
                var managed = process.ValueKind == JsonValueKind.Object;
                var slots = backend.GetProperty("slots");
                var queue = backend.GetProperty("queue");
                table.AddRow(
                    Markup.Escape(backend.GetProperty("name").GetString()!),
                    backend.GetProperty("state").GetString()!,
                    managed ? Text(process.GetProperty("pid")) : "",
                    managed ? Text(process.GetProperty("port")) : "",
                    managed && process.GetProperty("uptime_seconds").ValueKind == JsonValueKind.Number ? $"{process.GetProperty("uptime_seconds").GetDouble():0} s" : "",
                    managed ? Text(process.GetProperty("restarts")) : "",
                    $"{slots.GetProperty("busy")}/{slots.GetProperty("total")}",
                    $"{queue.GetProperty("depth")}/{queue.GetProperty("capacity")}",
                    Markup.Escape(backend.GetProperty("last_error").GetString() ?? ""));
            }

            AnsiConsole.Write(table);
            return 0;
        });
    }

    private static Command Control(string action, string description)
    {
        var name = new Argument<string>("name") { Description = "The backend's name (lockn backends list)" };
        var command = new Command(action, description) { name };
        return WithServer(command, async (client, parse, cancellationToken) =>
        {
            using var response = await client.PostAsync($"admin/backends/{Uri.EscapeDataString(parse.GetValue(name)!)}/{action}", null, cancellationToken);
            if (await FailureAsync(response, cancellationToken) is { } failed)
            {
                return failed;
            }

            var backend = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
            Console.WriteLine($"{backend.GetProperty("name").GetString()}: {backend.GetProperty("state").GetString()}");
            return 0;
        });
    }

    private static Command Logs()
    {
        var name = new Argument<string>("name") { Description = "The managed server's name" };
        var lines = new Option<int?>("--lines") { Description = "Only the last N lines (default: all kept, up to 500)" };
        var command = new Command("logs", "The last lines a managed llama-server wrote") { name, lines };
        return WithServer(command, async (client, parse, cancellationToken) =>
        {
            var query = parse.GetValue(lines) is { } count ? $"?lines={count.ToString(CultureInfo.InvariantCulture)}" : "";
            using var response = await client.GetAsync($"admin/backends/{Uri.EscapeDataString(parse.GetValue(name)!)}/logs{query}", cancellationToken);
            if (await FailureAsync(response, cancellationToken) is { } failed)
            {
                return failed;
            }

            var log = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
            foreach (var line in log.GetProperty("lines").EnumerateArray())
            {
                Console.WriteLine(line.GetString());
            }

            return 0;
        });
    }

    private static Command Add()
    {
        var name = new Argument<string>("name") { Description = "A short name for the backend" };
        var backendUrl = new Option<string>("--backend-url") { Required = true, Description = "The model server's base URL, e.g. http://10.0.0.7:8080" };
        var models = new Option<string[]>("--model") { Description = "A model id it serves (repeat for aliases; none for a llama-server router)", AllowMultipleArgumentsPerToken = false };
        var slots = new Option<int?>("--slots") { Description = "Requests sent at once (default: read from the server)" };
        var command = new Command("add", "Add a URL backend to every node (kept in the database)") { name, backendUrl, models, slots };
        return WithServer(command, async (client, parse, cancellationToken) =>
        {
            var given = parse.GetValue(models);
            var body = new JsonObject { ["name"] = parse.GetValue(name), ["url"] = parse.GetValue(backendUrl) };
            if (given is { Length: > 0 })
            {
                body["models"] = new JsonArray([.. given.Select(m => JsonValue.Create(m))]);
            }

            if (parse.GetValue(slots) is { } count)
            {
                body["slots"] = count;
            }

            using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            using var response = await client.PostAsync("admin/backends", content, cancellationToken);
            if (await FailureAsync(response, cancellationToken) is { } failed)
            {
                return failed;
            }

            Console.WriteLine($"Added {parse.GetValue(name)}.");
            return 0;
        });
    }

    private static Command Remove()
    {
        var name = new Argument<string>("name") { Description = "A backend added with lockn backends add" };
        var command = new Command("remove", "Remove a backend added at run time, from every node") { name };
        return WithServer(command, async (client, parse, cancellationToken) =>
        {
            using var response = await client.DeleteAsync($"admin/backends/{Uri.EscapeDataString(parse.GetValue(name)!)}", cancellationToken);
            if (await FailureAsync(response, cancellationToken) is { } failed)
            {
                return failed;
            }

            Console.WriteLine($"Removed {parse.GetValue(name)}.");
            return 0;
        });
    }

    /// <summary>Adds <c>--url</c> and <c>--key</c> to <paramref name="command"/> and runs it with a client for that server.</summary>
    private static Command WithServer(Command command, Func<HttpClient, ParseResult, CancellationToken, Task<int>> run)
    {
        var url = new Option<string?>("--url") { Description = $"The server's base address (default: the first of Urls, env LOCKN_URLS, else {LockNConfiguration.DefaultUrls})" };
        var key = new Option<string?>("--key") { Description = "An API key with the admin scope (default: env LOCKN_API_KEY)" };
        command.Options.Add(url);
        command.Options.Add(key);
        command.SetAction((parse, cancellationToken) => CommandHost.RunAsync(
            new Dictionary<string, string?>(),
            (_, _) => { },
            async host =>
            {
                var address = parse.GetValue(url) ?? LockNConfiguration.LocalServerAddress(host.Configuration);
                if (!Uri.TryCreate(address.TrimEnd('/') + "/", UriKind.Absolute, out var server) || (server.Scheme != Uri.UriSchemeHttp && server.Scheme != Uri.UriSchemeHttps))
                {
                    await Console.Error.WriteLineAsync($"lockn: --url must be an http:// or https:// address, not '{address}'.");
                    return 2;
                }

                var apiKey = parse.GetValue(key) ?? (Environment.GetEnvironmentVariable("LOCKN_API_KEY") is { Length: > 0 } fromEnv ? fromEnv : null);
                using var client = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromMinutes(2) };
                if (apiKey is not null)
                {
                    client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
                }

                try
                {
                    return await run(client, parse, cancellationToken);
                }
                catch (HttpRequestException ex)
                {
                    await Console.Error.WriteLineAsync($"lockn: cannot reach the server at {server}: {ex.Message}");
                    return 1;
                }
            }));
        return command;
    }

    // The server's own error message (OpenAI shape) on one line, and exit code 1; null for success.
    private static async Task<int?> FailureAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return null;
        }

        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        string message;
        try
        {
            message = JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("message").GetString() ?? text;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            message = $"the server answered {(int)response.StatusCode}";
        }

        await Console.Error.WriteLineAsync($"lockn: {message}");
        return 1;
    }

    private static string Text(JsonElement value) => value.ValueKind == JsonValueKind.Null ? "" : value.ToString();
}
