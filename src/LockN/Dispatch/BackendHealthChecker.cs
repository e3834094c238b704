using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

/// <summary>
/// Asks every backend's <c>/health</c> every few seconds (llama-server answers 200 when it can serve, 503 while it
/// loads). A backend marked down by a failed request (passive marking) comes back through these checks, so traffic
/// resumes without a restart. Reads the slot count from <c>/props</c> or <c>/slots</c> when it is not configured.
/// </summary>
internal sealed partial class BackendHealthChecker(
    BackendRegistry registry,
    UpstreamClient upstream,
    IOptions<DispatchOptions> options,
    TimeProvider time,
    ILogger<BackendHealthChecker> logger) : BackgroundService
{
    private readonly TimeSpan interval = TimeSpan.FromSeconds(options.Value.HealthCheckIntervalSeconds);
    private readonly TimeSpan timeout = TimeSpan.FromSeconds(options.Value.HealthCheckTimeoutSeconds);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {

        using var timer = new PeriodicTimer(interval, time);
        do
        {
            await Task.WhenAll(registry.All.Select(b => CheckAsync(b, stoppingToken)));
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    public async Task CheckAsync(Backend backend, CancellationToken cancellationToken)
    {
        if (backend.Server is { State: not ManagedServerState.Running } || backend.Removed)
        {
            return; // a managed server is watched by its own process supervision until it has loaded
        }

        var checkedUrl = backend.BaseUrl;
        using var timeoutSource = new CancellationTokenSource(timeout, time);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token);
        var started = time.GetTimestamp();
        string? problem;
        try
        {
            using var response = await SendAsync(backend, "health", deadline.Token);
            var latency = time.GetElapsedTime(started);
            if (response.IsSuccessStatusCode)
            {
                problem = backend.SlotsKnown && backend.RouterModels is null ? null : await ReadSlotsAsync(backend, deadline.Token);
                if (problem is null)
                {
                    if (backend.MarkHealthy(latency))
                    {
                        LogHealthy(logger, backend.Name, backend.Scheduler.Slots, backend.SlotsSource);
                    }

                    return;
                }
            }
            else
            {
                var body = await response.Content.ReadAsStringAsync(deadline.Token);
                problem = $"GET /health answered {(int)response.StatusCode}{Describe(body)}";
                if (response.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable && body.Contains("Loading model", StringComparison.OrdinalIgnoreCase))
                {
                    // llama-server is up and loading its model: not broken, just not ready yet.
                    if (backend.MarkUnhealthy(problem, fromCheck: true, loading: true))
                    {
                        LogUnhealthy(logger, backend.Name, problem);
                    }

                    return;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return;
        }
        catch (OperationCanceledException)
        {
            problem = $"GET /health did not answer within {timeout.TotalSeconds:0.##} s";
        }
        catch (HttpRequestException ex)
        {
            problem = UpstreamClient.Describe(ex);
        }

        if (backend.BaseUrl != checkedUrl || backend.Server is { State: not ManagedServerState.Running })
        {
            return; // the managed server restarted while it was checked: this answer was its predecessor's
        }

        if (backend.MarkUnhealthy(problem, fromCheck: true))
        {
            LogUnhealthy(logger, backend.Name, problem);
        }
    }

    // llama-server reports its slot count as total_slots in /props; /slots lists one entry per slot. A router
    // (role "router") has no slots of its own: its models and their load state come from /models, and it takes as many
    // requests at once as it runs model instances (max_instances), unless Slots says otherwise.
    private async Task<string?> ReadSlotsAsync(Backend backend, CancellationToken cancellationToken)
    {
        using (var props = await SendAsync(backend, "props", cancellationToken))
        {
            if (props.IsSuccessStatusCode)
            {
                using var json = await JsonDocument.ParseAsync(await props.Content.ReadAsStreamAsync(cancellationToken), default, cancellationToken);
                var root = json.RootElement;
                if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("role", out var role) && role.ValueKind == JsonValueKind.String && role.GetString() == "router")
                {
                    if (!backend.SlotsKnown)
                    {
                        var instances = root.TryGetProperty("max_instances", out var max) && max.TryGetInt32(out var n) && n > 0 ? n : 1;
                        backend.SetSlots(Math.Min(instances, 1024), "router");
                    }

                    return await ReadRouterModelsAsync(backend, cancellationToken);
                }

                if (root.ValueKind == JsonValueKind.Object
                    && root.TryGetProperty("total_slots", out var total) && total.TryGetInt32(out var count) && count > 0)
                {
                    backend.SetSlots(Math.Min(count, 1024), "props");
                    return null;
                }
            }
        }

        using (var slots = await SendAsync(backend, "slots", cancellationToken))
        {
            if (slots.IsSuccessStatusCode)
            {
                using var json = await JsonDocument.ParseAsync(await slots.Content.ReadAsStreamAsync(cancellationToken), default, cancellationToken);
                if (json.RootElement.ValueKind == JsonValueKind.Array && json.RootElement.GetArrayLength() > 0)
                {
                    backend.SetSlots(Math.Min(json.RootElement.GetArrayLength(), 1024), "slots");
                    return null;
                }
            }
        }

        return "its slot count is unknown: neither /props (total_slots) nor /slots said it; set Slots for this backend";
    }

    private async Task<string?> ReadRouterModelsAsync(Backend backend, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(backend, "models", cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            return $"the router's GET /models answered {(int)response.StatusCode}";
        }

        using var json = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken), default, cancellationToken);
        if (json.RootElement.ValueKind != JsonValueKind.Object || !json.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
        {
            return "the router's GET /models is not a model list";
        }

        var models = new List<RouterModel>();
        foreach (var model in data.EnumerateArray().Take(1024))
        {
            if (model.ValueKind != JsonValueKind.Object || !model.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String)
            {
                continue;
            }

            var aliases = model.TryGetProperty("aliases", out var a) && a.ValueKind == JsonValueKind.Array
                ? a.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToArray()
                : [];
            var status = model.TryGetProperty("status", out var st) && st.ValueKind == JsonValueKind.Object && st.TryGetProperty("value", out var value) && value.ValueKind == JsonValueKind.String
                ? value.GetString()!
                : "unknown";
            models.Add(new RouterModel(id.GetString()!, aliases, status));
        }

        backend.SetRouterModels(models);
        return null;
    }

    private Task<HttpResponseMessage> SendAsync(Backend backend, string path, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri(backend.BaseUrl ?? throw new HttpRequestException("the backend is not running"), path));
        if (backend.Options.ApiKey is { Length: > 0 } key)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return upstream.Http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
    }

    private static string Describe(string body)
    {
        body = body.Trim();
        return body.Length == 0 ? "" : ": " + (body.Length > 200 ? body[..200] + "…" : body);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Backend {Backend} is healthy ({Slots} slots, {Source})")]
    private static partial void LogHealthy(ILogger logger, string backend, int slots, string source);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backend {Backend} is unhealthy: {Problem}")]
    private static partial void LogUnhealthy(ILogger logger, string backend, string problem);
}
