using LockN.Dispatch;
using LockN.Transcription;

namespace LockN.Health;

/// <summary>/health/live (the process answers) and /health/ready (the default model can serve; slots and queues).</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health/live", () => TypedResults.Ok(new { status = "live" }));
        app.MapGet("/health/ready", (HttpContext context) =>
        {
            var models = context.RequestServices.GetRequiredService<WhisperModels>();
            var report = ReadinessReport.From(models, context.RequestServices.GetService<Classification.YamnetHost>(), context.RequestServices.GetService<BackendRegistry>());
            return report.Ready ? Results.Json(report) : Results.Json(report, statusCode: StatusCodes.Status503ServiceUnavailable);
        });
        return app;
    }
}

internal sealed record SlotsReport(int Busy, int Total);

internal sealed record QueueReport(int Depth, int Capacity, double TimeoutSeconds);

internal sealed record ModelReport(string Id, string State, bool Default, bool TestWeights, int Workers, SlotsReport Slots, QueueReport Queue, string? LastError);

/// <summary>A model server in /health/ready (the full picture is GET /admin/backends).</summary>
internal sealed record BackendHealthReport(string Name, string State, SlotsReport Slots, QueueReport Queue, string? LastError)
{
    public static BackendHealthReport From(Backend backend)
    {
        var snapshot = backend.Scheduler.Snapshot();
        return new BackendHealthReport(backend.Name, backend.State.ToString().ToLowerInvariant(), new SlotsReport(snapshot.Busy, snapshot.Total),
            new QueueReport(snapshot.QueueDepth, snapshot.QueueCapacity, backend.Deadline.TotalSeconds), backend.LastError);
    }
}

/// <summary>
/// Readiness follows the default speech model only: a model server being down is shown under <c>Backends</c>
/// (and its requests get 503 naming it) but does not take LockN out of its load balancer.
/// </summary>
internal sealed record ReadinessReport(string Status, bool Ready, string DefaultModel, string? Problem, IReadOnlyList<ModelReport> Models, IReadOnlyList<BackendHealthReport> Backends)
{
    public static ReadinessReport From(WhisperModels models, Classification.YamnetHost? yamnet, BackendRegistry? backends)
    {
        var reports = models.All
            .OrderBy(h => h.Model.Id, StringComparer.Ordinal)
            .Select(host =>
            {
                var snapshot = host.Scheduler.Snapshot();
                return new ModelReport(
                    host.Model.Id,
                    host.State.ToString().ToLowerInvariant(),
                    host == models.Default,
                    host.Model.IsTestWeights,
                    host.LiveWorkers,
                    new SlotsReport(snapshot.Busy, snapshot.Total),
                    new QueueReport(snapshot.QueueDepth, snapshot.QueueCapacity, host.Scheduler.QueueDeadline.TotalSeconds),
                    host.LastError);
            })
            .ToList();
        if (yamnet is { IsAvailable: true })
        {
            var snapshot = yamnet.Scheduler.Snapshot();
            reports.Add(new ModelReport(Classification.YamnetModel.Id, yamnet.State, false, false, 0,
                new SlotsReport(snapshot.Busy, snapshot.Total), new QueueReport(snapshot.QueueDepth, snapshot.QueueCapacity, yamnet.Scheduler.QueueDeadline.TotalSeconds), yamnet.LastError));
        }

        var ready = models.Default?.State == ModelState.Ready;
        return new ReadinessReport(ready ? "ready" : "not_ready", ready, models.DefaultModelId,
            ready ? null : models.DefaultModelProblem ?? $"Default model {models.DefaultModelId} is loading.", reports,
            backends?.All.Select(BackendHealthReport.From).ToArray() ?? []);
    }
}
