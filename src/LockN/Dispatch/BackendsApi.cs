using LockN.Http;
using LockN.Scheduling;

namespace LockN.Dispatch;

/// <summary>A managed server's process as /admin/backends shows it.</summary>
internal sealed record ProcessReport(
    string Start,
    int? Pid,
    int? Port,
    double? UptimeSeconds,
    int Restarts,
    string? LastExit,
    long MemoryMib,
    double IdleUnloadSeconds,
    StartTimings? LastStart);

/// <summary>One backend as /admin/backends and /health/ready show it.</summary>
internal sealed record BackendReport(
    string Name,
    BackendSource Source,
    string? Url,
    IReadOnlyList<string> Models,
    BackendState State,
    SlotsReport Slots,
    QueueReport Queue,
    double DeadlineSeconds,
    string? LastError,
    long? LastCheckedAt,
    double? HealthLatencyMs,
    double? FirstByteLatencyMs,
    double? FirstTokenLatencyMs,
    double? TokensPerSecond,
    ProcessReport? Process,
    IReadOnlyList<RouterModel>? RouterModels)
{
    public static BackendReport From(Backend backend)
    {
        var (slots, queue) = backend.Scheduler.Report(backend.SlotsSource);
        var server = backend.Server;
        return new BackendReport(
            backend.Name,
            backend.Source,
            // Credentials in the URL stay out of reports.
            backend.BaseUrl is { } url ? new UriBuilder(url) { UserName = "", Password = "" }.Uri.ToString().TrimEnd('/') : null,
            backend.Models,
            backend.State,
            slots,
            queue,
            backend.Deadline.TotalSeconds,
            backend.LastError ?? (backend.State is BackendState.Failed or BackendState.Stopped ? server?.LastExit : null),
            backend.LastCheckedAt?.ToUnixTimeSeconds(),
            backend.HealthLatencyMs,
            Round(backend.MeanFirstByteMs),
            Round(backend.MeanFirstTokenMs),
            Round(backend.MeanTokensPerSecond),
            server is null ? null : new ProcessReport(
                server.Options.OnDemand ? ManagedServerOptions.StartOnDemand : ManagedServerOptions.StartAlways,
                server.Pid,
                server.Port is { } port && server.Pid is not null ? port : null,
                server.Uptime is { } up ? Math.Round(up.TotalSeconds, 1) : null,
                server.Restarts,
                server.LastExit,
                server.Options.MemoryMiB,
                server.Options.IdleUnloadSeconds,
                server.LastStart),
            backend.RouterModels);
    }

    /// <summary>
    /// The same for /health/ready, which anyone may read: without a managed server's process details, and with its
    /// failure as a state rather than the reason (which may name model paths and quote llama-server's output).
    /// </summary>
    public static BackendReport Public(Backend backend)
    {
        var report = From(backend);
        return backend.Server is null
            ? report
            : report with { Process = null, LastError = backend.State is BackendState.Failed ? "failed (see /admin/backends)" : report.LastError is null ? null : "see /admin/backends" };
    }

    private static double? Round(double? value) => value is { } v ? Math.Round(v, 2) : null;
}

/// <summary>POST /admin/backends: a URL backend added at run time (kept in the database for every node).</summary>
internal sealed record AddBackendBody(string? Name, string? Url, IReadOnlyList<string>? Models, int? Slots, int? QueueLength, double? DeadlineSeconds, string? ApiKey);

/// <summary>The answer to DELETE /admin/backends/{name}, in OpenAI's deletion shape.</summary>
internal sealed record DeletedBackend(string Id, string Object = "backend", bool Deleted = true);

/// <summary>The last lines of a managed server's output.</summary>
internal sealed record BackendLog(string Name, IReadOnlyList<string> Lines, string Object = "backend.log");

/// <summary>
/// /admin/backends: every model server's state, slots, queue and latency; a managed server's process; and runtime
/// control — start, stop, restart, drain, its log, and URL backends added and removed at run time.
/// </summary>
internal static class BackendsApi
{
    private const string AddExample = """{"name": "gpu2", "url": "http://10.0.0.7:8080", "models": ["qwen2.5-7b"]}""";

    public static IEndpointRouteBuilder MapBackendsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/backends", (BackendRegistry registry) =>
            TypedResults.Ok(new ObjectList<BackendReport>([.. registry.All.Select(BackendReport.From)])));
        app.MapGet("/backends/{name}", (string name, BackendRegistry registry) =>
            registry.Find(name) is { } backend ? Results.Ok(BackendReport.From(backend)) : NotFound(name).ToResult());
        app.MapGet("/backends/{name}/logs", (string name, int? lines, BackendRegistry registry) =>
        {
            if (registry.Find(name) is not { } backend)
            {
                return NotFound(name).ToResult();
            }

            if (backend.Server is not { } server)
            {
                return ApiError.BadRequest($"Backend '{name}' is a URL backend: LockN does not run it, so it has no log here.", "name", "not_managed").ToResult();
            }

            var all = server.LogLines();
            var take = Math.Clamp(lines ?? all.Count, 0, all.Count);
            return Results.Ok(new BackendLog(backend.Name, [.. all.Skip(all.Count - take)]));
        });
        app.MapPost("/backends/{name}/{action}", ControlAsync).DisableAntiforgery();
        app.MapPost("/backends", AddAsync).DisableAntiforgery();
        app.MapDelete("/backends/{name}", async (string name, BackendRegistry registry, BackendStore store, CancellationToken cancellationToken) =>
        {
            if (registry.Find(name) is not { } backend)
            {
                return NotFound(name).ToResult();
            }

            if (backend.Source != BackendSource.Database)
            {
                return Conflict($"Backend '{name}' is declared in configuration ({Where(backend)}); remove it there. Only backends added through POST /admin/backends are removed here.").ToResult();
            }

            await store.RemoveAsync(backend.Name, cancellationToken);
            return Results.Ok(new DeletedBackend(backend.Name));
        });
        return app;
    }

    private static async Task<IResult> ControlAsync(string name, string action, BackendRegistry registry, BackendStore store, CancellationToken cancellationToken)
    {
        if (registry.Find(name) is not { } backend)
        {
            return NotFound(name).ToResult();
        }

        var server = backend.Server;
        switch (action)
        {
            case "drain":
                if (backend.Source == BackendSource.Database)
                {
                    await store.SetDrainingAsync(backend.Name, draining: true, cancellationToken);
                }

                backend.Drain();
                break;
            case "start":
                if (backend.Source == BackendSource.Database)
                {
                    await store.SetDrainingAsync(backend.Name, draining: false, cancellationToken);
                }

                backend.Resume();
                if (server is not null)
                {
                    await server.StartAsync(byAdmin: true, cancellationToken);
                }

                break;
            case "stop" or "restart" when server is null:
                return ApiError.BadRequest($"Backend '{name}' is a URL backend: LockN does not run it, so it cannot {action} it. Use drain to take it out of rotation.", "action", "not_managed").ToResult();
            case "stop":
                await server.StopAsync("stopped by an admin", cancellationToken);
                break;
            case "restart":
                backend.Resume();
                await server.RestartAsync("restarted by an admin", graceful: true, cancellationToken);
                break;
            default:
                return ApiError.BadRequest($"Unknown action '{action}': use start, stop, restart or drain.", "action", "invalid_action").ToResult();
        }

        return Results.Ok(BackendReport.From(backend));
    }

    private static async Task<IResult> AddAsync(HttpRequest request, BackendRegistry registry, BackendStore store, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, LockNJson.Context.AddBackendBody, AddExample, cancellationToken);
        if (error is not null)
        {
            return error.ToResult();
        }

        if (body is null || string.IsNullOrWhiteSpace(body.Name) || body.Name.Length > 100 || body.Name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            return ApiError.BadRequest($"'name' is required: up to 100 letters, digits, '-', '_' or '.'. Send an object such as {AddExample}.", "name", "invalid_name").ToResult();
        }

        if (!Uri.TryCreate(body.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps) || body.Url!.Length > 2000)
        {
            return ApiError.BadRequest($"'url' must be an absolute http or https URL such as http://10.0.0.7:8080 (got '{body.Url}').", "url", "invalid_url").ToResult();
        }

        if (!string.IsNullOrEmpty(url.UserInfo))
        {
            return ApiError.BadRequest("'url' must not carry credentials: they would be stored in plain text.", "url", "invalid_url").ToResult();
        }

        var models = body.Models ?? []; // none: a llama-server router, whose models are read from its /models
        if (models.Any(m => string.IsNullOrWhiteSpace(m) || m.Length > 200) || models.Count > 32 || (body.Models is not null && models.Count == 0))
        {
            return ApiError.BadRequest("'models' must list 1 to 32 model ids (the backend's own first, then aliases), none empty; leave it out for a llama-server router.", "models", "invalid_models").ToResult();
        }

        if (body.ApiKey is not null)
        {
            return ApiError.BadRequest("'api_key' is not accepted here: it would be stored in the database in plain text. Declare a backend that needs a key in configuration (Dispatch:Backends:N:ApiKey).", "api_key", "unsupported_parameter").ToResult();
        }

        if (body.Slots is < 0 or > 1024 || body.QueueLength is < 0 or > 100_000 || body.DeadlineSeconds is not (null or (>= 0.05 and <= 86_400)))
        {
            return ApiError.BadRequest("'slots' must be 0 (ask the server) to 1024, 'queue_length' 0 to 100000, 'deadline_seconds' 0.05 to 86400.", null, "invalid_value").ToResult();
        }

        var options = new BackendOptions
        {
            Name = body.Name,
            Url = url.ToString().TrimEnd('/'),
            Models = [.. models.Select(m => m.Trim())],
            Slots = body.Slots ?? 0,
            QueueLength = body.QueueLength ?? 16,
            DeadlineSeconds = body.DeadlineSeconds ?? 300,
        };
        if (!await store.AddAsync(options, cancellationToken))
        {
            return Conflict($"A backend named '{body.Name}' exists already.").ToResult();
        }

        return Results.Created($"/admin/backends/{options.Name}", BackendReport.From(registry.Find(options.Name)!));
    }

    private static string Where(Backend backend) => backend.Source == BackendSource.Managed ? "Dispatch:ManagedServers" : "Dispatch:Backends";

    private static ApiError NotFound(string name) =>
        new(StatusCodes.Status404NotFound, $"No backend is named '{name}'. GET /admin/backends lists them.", "invalid_request_error", "name", "backend_not_found");

    private static ApiError Conflict(string message) =>
        new(StatusCodes.Status409Conflict, message, "invalid_request_error", "name", "conflict");
}
