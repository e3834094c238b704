using System.Text.Json.Serialization;

namespace LockN.Dispatch;

public sealed record BackendSlotsReport(
    [property: JsonPropertyName("busy")] int Busy,
    [property: JsonPropertyName("total")] int Total,
    [property: JsonPropertyName("source")] string Source);

public sealed record BackendQueueReport(
    [property: JsonPropertyName("depth")] int Depth,
    [property: JsonPropertyName("capacity")] int Capacity,
    [property: JsonPropertyName("deadline_seconds")] double DeadlineSeconds);

/// <summary>One backend as /admin/backends and /health/ready show it.</summary>
public sealed record BackendReport(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("url")] string Url,
    [property: JsonPropertyName("models")] IReadOnlyList<string> Models,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("slots")] BackendSlotsReport Slots,
    [property: JsonPropertyName("queue")] BackendQueueReport Queue,
    [property: JsonPropertyName("last_error")] string? LastError,
    [property: JsonPropertyName("last_checked_at")] long? LastCheckedAt,
    [property: JsonPropertyName("health_latency_ms")] double? HealthLatencyMs,
    [property: JsonPropertyName("first_byte_latency_ms")] double? FirstByteLatencyMs)
{
    public static BackendReport From(Backend backend)
    {
        var snapshot = backend.Scheduler.Snapshot();
        return new BackendReport(
            backend.Name,
            // Credentials in the URL stay out of reports.
            new UriBuilder(backend.BaseUrl) { UserName = "", Password = "" }.Uri.ToString().TrimEnd('/'),
            backend.Models,
            backend.State.ToString().ToLowerInvariant(),
            new BackendSlotsReport(snapshot.Busy, snapshot.Total, backend.SlotsSource),
            new BackendQueueReport(snapshot.QueueDepth, snapshot.QueueCapacity, backend.Deadline.TotalSeconds),
            backend.LastError,
            backend.LastCheckedAt?.ToUnixTimeSeconds(),
            backend.HealthLatencyMs,
            backend.MeanFirstByteMs is { } ms ? Math.Round(ms, 2) : null);
    }
}

/// <summary>GET /admin/backends: each model server's health, slots busy/total, queue depth, last error and latency.</summary>
public static class BackendsApi
{
    public static IEndpointRouteBuilder MapBackendsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/backends", (BackendRegistry registry) =>
            TypedResults.Ok(new { @object = "list", data = registry.All.Select(BackendReport.From).ToArray() }));
        return app;
    }
}
