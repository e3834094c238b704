using LockN.Http;
using LockN.Models;
using LockN.Scheduling;
using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

/// <summary>
/// Every backend — URL backends from configuration and from the database, and the managed llama-server processes —
/// and which one a request for a model goes to. A managed server that is not running is started here when a request
/// needs it (on demand), after room is made for it under <c>Dispatch:MaxResidentMemoryMiB</c>.
/// </summary>
internal sealed partial class BackendRegistry : IAsyncDisposable
{
    private static readonly TimeSpan CapacityPoll = TimeSpan.FromMilliseconds(50);

    private readonly Lock gate = new();
    private readonly SemaphoreSlim budget = new(1, 1);
    private readonly DispatchOptions options;
    private readonly SlotSchedulers schedulers;
    private readonly TimeProvider time;
    private readonly ILogger<BackendRegistry> logger;
    private readonly TimeSpan firstCheckWait;
    private Backend[] all;

    public BackendRegistry(IOptions<DispatchOptions> options, SlotSchedulers schedulers, TimeProvider time, ProcessLauncher launcher, UpstreamClient upstream, ModelDirectories directories, ILogger<BackendRegistry> logger)
    {
        this.options = options.Value;
        this.schedulers = schedulers;
        this.time = time;
        this.logger = logger;
        firstCheckWait = TimeSpan.FromSeconds(this.options.HealthCheckTimeoutSeconds + 1);
        var configured = this.options.Backends.Select(b => new Backend(b, BackendSource.Configuration, schedulers, time));
        var managed = this.options.ManagedServers.Select(m =>
        {
            var server = new ManagedLlamaServer(m, this.options, directories, launcher, upstream, time, logger);
            var backend = new Backend(m.ToBackend(), BackendSource.Managed, schedulers, time, server);
            server.Backend = backend;
            return backend;
        });
        all = [.. configured, .. managed];
        StartedAt = time.GetUtcNow();
    }

    public IReadOnlyList<Backend> All => Volatile.Read(ref all);

    public IEnumerable<ManagedLlamaServer> ManagedServers => All.Select(b => b.Server).OfType<ManagedLlamaServer>();

    /// <summary>When the backends were configured (the <c>created</c> of their /v1/models entries).</summary>
    public DateTimeOffset StartedAt { get; }

    public Backend? Find(string name) => All.FirstOrDefault(b => string.Equals(b.Name, name, StringComparison.OrdinalIgnoreCase));

    public bool Knows(string model) => All.Any(b => b.Serves(model) && !b.Removed);

    /// <summary>Adds a URL backend defined at run time (from the database); false when the name is taken.</summary>
    public bool TryAdd(BackendOptions backend)
    {
        lock (gate)
        {
            if (Find(backend.Name) is not null)
            {
                return false;
            }

            Volatile.Write(ref all, [.. all, new Backend(backend, BackendSource.Database, schedulers, time)]);
            return true;
        }
    }

    /// <summary>Removes a run-time backend: requests in flight finish on it, no new one is sent.</summary>
    public bool TryRemove(string name)
    {
        lock (gate)
        {
            if (Find(name) is not { Source: BackendSource.Database } backend)
            {
                return false;
            }

            backend.Remove();
            Volatile.Write(ref all, [.. all.Where(b => b != backend)]);
            return true;
        }
    }

    /// <summary>
    /// The backend for <paramref name="model"/>: a ready one with the most free capacity; else a managed one that is
    /// loading or may be started for it; else the 503 to send at once, naming why each backend cannot serve.
    /// URL backends not checked yet are waited for (their first check is quick).
    /// </summary>
    public async Task<(Backend? Backend, ApiError? Error)> SelectAsync(string model, CancellationToken cancellationToken)
    {
        var candidates = All.Where(b => b.Serves(model) && !b.Removed).ToArray();
        if (candidates.Length == 0 && All.Where(b => b.Server is null && b.State == BackendState.Unknown).Select(b => b.FirstCheck).ToArray() is { Length: > 0 } pendingChecks)
        {
            // A router lists its models only once checked: a request at start-up waits for that (it is quick).
            try
            {
                await Task.WhenAll(pendingChecks).WaitAsync(firstCheckWait, cancellationToken);
            }
            catch (TimeoutException)
            {
            }

            candidates = [.. All.Where(b => b.Serves(model) && !b.Removed)];
        }

        if (candidates.Length == 0)
        {
            return (null, ApiError.ModelNotFound(model));
        }

        var firstChecks = candidates.Where(b => b.Server is null && b.State == BackendState.Unknown).Select(b => b.FirstCheck).ToArray();
        if (firstChecks.Length > 0)
        {
            try
            {
                await Task.WhenAll(firstChecks).WaitAsync(firstCheckWait, cancellationToken);
            }
            catch (TimeoutException)
            {
                // still unknown: reported below as not ready
            }
        }

        var ready = candidates.Where(b => b.State == BackendState.Ready).ToArray();
        if (ready.Length > 0)
        {
            return (ready.MinBy(Load), null);
        }

        // A managed server already on its way up, else one that may be started for this request.
        // (One whose process has just died counts as on its way up: the restart follows within moments.)
        var startable = candidates.FirstOrDefault(b => b.Server is { } s && (b.State == BackendState.Loading || (s.State == ManagedServerState.Running && s.ProcessGone)))
            ?? candidates.FirstOrDefault(b => b.Server is { Options.OnDemand: true } && b.State == BackendState.Stopped);
        if (startable is not null)
        {
            return (startable, null);
        }

        var reasons = string.Join("; ", candidates.Select(b => b.State == BackendState.Failed ? Why(b) : $"backend '{b.Name}' {Why(b)}"));
        return (null, ApiError.Unavailable($"Model '{model}' cannot be served now: {reasons}. Retry later.", "backend_unavailable") with { RetryAfterSeconds = 5 });
    }

    /// <summary>
    /// For an on-demand managed backend that is stopped: makes room for it under the memory budget and starts it. Null
    /// when that is done or not needed (it runs, is starting, or is not started by requests); else the error for the
    /// client (no room within <c>CapacityWaitSeconds</c>, or it failed).
    /// </summary>
    public async Task<ApiError?> EnsureStartedAsync(Backend backend, CancellationToken cancellationToken)
    {
        if (backend.Server is not { Options.OnDemand: true, State: ManagedServerState.Stopped } server)
        {
            return null;
        }

        var waitedSince = time.GetTimestamp();
        var limit = TimeSpan.FromSeconds(options.CapacityWaitSeconds);
        while (true)
        {
            string? shortOf;
            await budget.WaitAsync(cancellationToken);
            try
            {
                shortOf = await MakeRoomAsync(server, cancellationToken);
                if (shortOf is null)
                {
                    LogStartingOnDemand(logger, server.Options.Name);
                    await server.StartAsync(byAdmin: false, cancellationToken);
                    return server.State == ManagedServerState.Failed
                        ? ApiError.Unavailable($"Model '{backend.ModelId}' cannot be served: {ManagedLlamaServer.FailedForClients(backend.Name)}", "backend_unavailable")
                        : null;
                }
            }
            finally
            {
                budget.Release();
            }

            if (time.GetElapsedTime(waitedSince) >= limit)
            {
                return new ApiError(StatusCodes.Status503ServiceUnavailable,
                    $"Model '{backend.ModelId}' needs {server.Options.MemoryMiB} MiB and {shortOf}; every loaded model is busy, so none could be unloaded within {limit.TotalSeconds:0.#} s. Retry later.",
                    "server_error", null, "insufficient_capacity")
                { RetryAfterSeconds = 5 };
            }

            await Task.Delay(CapacityPoll, time, cancellationToken);
        }
    }

    /// <summary>Null when <paramref name="starting"/> fits (after stopping idle models, least recently used first); else what is short.</summary>
    private async Task<string?> MakeRoomAsync(ManagedLlamaServer starting, CancellationToken cancellationToken)
    {
        var limit = options.MaxResidentMemoryMiB;
        if (limit <= 0 || starting.Options.MemoryMiB <= 0)
        {
            return null;
        }

        var resident = ManagedServers.Where(s => s != starting && s.State is ManagedServerState.Running or ManagedServerState.Starting).ToList();
        var used = resident.Sum(s => s.Options.MemoryMiB);
        foreach (var idle in resident.Where(s => !s.Backend.HasWork && s.Options.MemoryMiB > 0).OrderByDescending(s => s.Backend.IdleFor))
        {
            if (used + starting.Options.MemoryMiB <= limit)
            {
                break;
            }

            if (idle.Backend.HasWork)
            {
                continue; // a request arrived for it since the list was made
            }

            LogUnloading(logger, idle.Options.Name, starting.Options.Name);
            await idle.StopAsync($"unloaded to make room for '{starting.Options.Name}' (Dispatch:MaxResidentMemoryMiB {limit})", cancellationToken);
            used -= idle.Options.MemoryMiB;
        }

        return used + starting.Options.MemoryMiB <= limit
            ? null
            : $"{used} of the {limit} MiB of Dispatch:MaxResidentMemoryMiB are held by models with requests in flight";
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(ManagedServers.Select(s => s.DisposeAsync().AsTask()));
        budget.Dispose();
    }

    private static string Why(Backend backend) => backend.State switch
    {
        BackendState.Draining => "is draining (it takes no new requests)",
        BackendState.Stopped => $"is stopped{(backend.Server?.LastExit is { } why ? $" ({why})" : "")}; an admin starts it with POST /admin/backends/{backend.Name}/start",
        BackendState.Failed => ManagedLlamaServer.FailedForClients(backend.Name).TrimEnd('.'),
        BackendState.Loading => "is loading its model",
        _ => $"is unavailable: {backend.LastError ?? "not healthy"}",
    };

    // Requests running or waiting per slot: the least loaded backend gets the next request.
    private static double Load(Backend backend)
    {
        var snapshot = backend.Scheduler.Snapshot();
        return (snapshot.Busy + snapshot.QueueDepth) / (double)snapshot.Total;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Starting managed server {Name} for a request")]
    private static partial void LogStartingOnDemand(ILogger logger, string name);

    [LoggerMessage(Level = LogLevel.Information, Message = "Unloading idle managed server {Name} to make room for {Starting}")]
    private static partial void LogUnloading(ILogger logger, string name, string starting);
}
