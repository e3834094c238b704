using LockN.Http;
using LockN.Scheduling;

namespace LockN.Dispatch;

/// <summary>One backend as /admin/backends and /health/ready show it.</summary>
internal sealed record BackendReport(
    string Name,
    string Url,
    IReadOnlyList<string> Models,
    BackendState State,
    SlotsReport Slots,
    QueueReport Queue,
    double DeadlineSeconds,
    string? LastError,
    long? LastCheckedAt,
    double? HealthLatencyMs,
    double? FirstByteLatencyMs)
{
    public static BackendReport From(Backend backend)
    {
        var (slots, queue) = backend.Scheduler.Report(backend.SlotsSource);
        return new BackendReport(
            backend.Name,
            // Credentials in the URL stay out of reports.
            new UriBuilder(backend.BaseUrl) { UserName = "", Password = "" }.Uri.ToString().TrimEnd('/'),
            backend.Models,
            backend.State,
            slots,
            queue,
            backend.Deadline.TotalSeconds,
            backend.LastError,
            backend.LastCheckedAt?.ToUnixTimeSeconds(),
            backend.HealthLatencyMs,
            backend.MeanFirstByteMs is { } ms ? Math.Round(ms, 2) : null);
    }
}

/// <summary>GET /admin/backends: each model server's health, slots busy/total, queue depth, last error and latency.</summary>
internal static class BackendsApi
{
    public static IEndpointRouteBuilder MapBackendsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/backends", (BackendRegistry registry) =>
            TypedResults.Ok(new ObjectList<BackendReport>([.. registry.All.Select(BackendReport.From)])));
        return app;
    }
}
