using LockN.Http;
using LockN.Scheduling;
using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

/// <summary>The configured backends, and which one a request for a model goes to.</summary>
internal sealed class BackendRegistry(IOptions<DispatchOptions> options, SlotSchedulers schedulers, TimeProvider time)
{
    private readonly TimeSpan firstCheckWait = TimeSpan.FromSeconds(options.Value.HealthCheckTimeoutSeconds + 1);

    public IReadOnlyList<Backend> All { get; } = options.Value.Backends.Select(b => new Backend(b, schedulers, time)).ToArray();

    /// <summary>When the backends were configured (the <c>created</c> of their /v1/models entries).</summary>
    public DateTimeOffset StartedAt { get; } = time.GetUtcNow();

    public bool Knows(string model) => All.Any(b => b.Serves(model));

    /// <summary>
    /// The backend for <paramref name="model"/>: a healthy one with the most free capacity, or the 503 to send at
    /// once when every backend serving it is down. Backends not checked yet are waited for (their first check is quick).
    /// </summary>
    public async Task<(Backend? Backend, ApiError? Error)> SelectAsync(string model, CancellationToken cancellationToken)
    {
        var candidates = All.Where(b => b.Serves(model)).ToArray();
        if (candidates.Length == 0)
        {
            return (null, ApiError.ModelNotFound(model));
        }

        var firstChecks = candidates.Where(b => b.State == BackendState.Unknown).Select(b => b.FirstCheck).ToArray();
        if (firstChecks.Length > 0)
        {
            try
            {
                await Task.WhenAll(firstChecks).WaitAsync(firstCheckWait, cancellationToken);
            }
            catch (TimeoutException)
            {
                // still unknown: reported below as not healthy
            }
        }

        var healthy = candidates.Where(b => b.State == BackendState.Healthy).ToArray();
        if (healthy.Length == 0)
        {
            var reasons = string.Join("; ", candidates.Select(b => $"backend '{b.Name}' is unavailable: {b.LastError ?? "not healthy"}"));
            return (null, ApiError.Unavailable($"Model '{model}' cannot be served now: {reasons}. Retry later.", "backend_unavailable") with { RetryAfterSeconds = 5 });
        }

        return (healthy.MinBy(Load), null);
    }

    // Requests running or waiting per slot: the least loaded backend gets the next request.
    private static double Load(Backend backend)
    {
        var snapshot = backend.Scheduler.Snapshot();
        return (snapshot.Busy + snapshot.QueueDepth) / (double)snapshot.Total;
    }
}
