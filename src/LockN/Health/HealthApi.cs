using LockN.Classification;
using LockN.Dispatch;
using LockN.Scheduling;
using LockN.Transcription;

namespace LockN.Health;

/// <summary>/health/live (the process answers) and /health/ready (the default model can serve; slots and queues).</summary>
internal static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health/live", () => TypedResults.Ok(new LivenessReport("live")));
        app.MapGet("/health/ready", (WhisperModels models, YamnetHost yamnet, BackendRegistry backends) =>
        {
            var report = ReadinessReport.From(models, yamnet, backends);
            return TypedResults.Json(report, statusCode: report.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });
        return app;
    }
}

internal sealed record LivenessReport(string Status);

internal sealed record ModelReport(string Id, ModelState State, bool Default, bool TestWeights, int Workers, SlotsReport Slots, QueueReport Queue, string? LastError, RuntimeReport? Runtime = null, string? Degraded = null);

/// <summary>The engine a model runs on. The library by file name only: this endpoint is public, the full path is in the log.</summary>
internal sealed record RuntimeReport(string Engine, string Source, string? Library, bool FlashAttention, string? SystemInfo)
{
    public static RuntimeReport? From(WhisperRuntimeInfo? runtime) => runtime is null
        ? null
        : new RuntimeReport("whisper.cpp", runtime.Source, runtime.Library is { } path ? Path.GetFileName(path) : null, runtime.FlashAttention, runtime.SystemInfo);
}

/// <summary>
/// Readiness follows the default speech model only: a model server being down is shown under <c>backends</c>
/// (and its requests get 503 naming it) but does not take LockN out of its load balancer.
/// </summary>
internal sealed record ReadinessReport(string Status, bool Ready, string DefaultModel, string? Problem, IReadOnlyList<ModelReport> Models, IReadOnlyList<BackendReport> Backends)
{
    public static ReadinessReport From(WhisperModels models, YamnetHost yamnet, BackendRegistry backends)
    {
        var reports = models.All
            .OrderBy(h => h.Model.Id, StringComparer.Ordinal)
            .Select(host =>
            {
                var (slots, queue) = host.Scheduler.Report();
                return new ModelReport(host.Model.Id, host.State, host == models.Default, host.Model.IsTestWeights, host.LiveWorkers, slots, queue, host.LastError, RuntimeReport.From(host.Runtime), host.DegradedReason);
            })
            .ToList();
        if (yamnet.IsAvailable)
        {
            var (slots, queue) = yamnet.Scheduler.Report();
            reports.Add(new ModelReport(YamnetModel.Id, yamnet.State, false, false, 0, slots, queue, yamnet.LastError));
        }

        // Ready means a request finds a warm worker now: a model whose worker was killed (a cancelled job) or crashed
        // is degraded until its replacement loads, and not ready while none is left.
        var model = models.Default;
        var ready = model?.CanServeNow == true;
        var status = model?.State == ModelState.Degraded ? "degraded" : ready ? "ready" : "not_ready";
        var problem = model?.DegradedReason ?? (ready ? null : models.DefaultModelProblem ?? $"Default model {models.DefaultModelId} is loading.");
        return new ReadinessReport(status, ready, models.DefaultModelId, problem, reports, [.. backends.All.Select(BackendReport.Public)]);
    }
}
