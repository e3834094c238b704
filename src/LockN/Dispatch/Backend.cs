using LockN.Scheduling;

namespace LockN.Dispatch;

/// <summary>Where a backend stands, as /admin/backends shows it.</summary>
internal enum BackendState
{
    /// <summary>Not checked yet (the first health check is under way).</summary>
    Unknown,

    /// <summary>Its server runs but is still loading its model (<c>/health</c> 503); managed servers' requests wait for it.</summary>
    Loading,
    Ready,

    /// <summary>It does not answer, or answers with errors; requests get 503 until a health check finds it back.</summary>
    Unhealthy,

    /// <summary>Takes no new requests; those in flight finish.</summary>
    Draining,

    /// <summary>A managed server that is not running (never started, unloaded when idle, or stopped by an admin).</summary>
    Stopped,

    /// <summary>A managed server that crashed too often, or could not start; it stays down until an admin starts it.</summary>
    Failed,
}

/// <summary>Where a backend's definition comes from.</summary>
internal enum BackendSource
{
    /// <summary><c>Dispatch:Backends</c>: a URL in configuration.</summary>
    Configuration,

    /// <summary>Added at run time through /admin/backends, kept in the database for every node.</summary>
    Database,

    /// <summary><c>Dispatch:ManagedServers</c>: a llama-server process LockN runs.</summary>
    Managed,
}

/// <summary>
/// One model server as LockN sees it: where it is, the slots and queue in front of it, and whether it answers.
/// Health comes from the active checks of <see cref="BackendHealthChecker"/> and from failed requests (passive);
/// a managed backend's process, and whether it runs at all, from its <see cref="ManagedLlamaServer"/>.
/// </summary>
internal sealed class Backend
{
    private readonly Lock gate = new();
    private readonly TaskCompletionSource firstCheck = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeProvider time;
    private readonly SlotSchedulers schedulers;
    private readonly Uri? configuredUrl;
    private double meanFirstByteMs;
    private double meanFirstTokenMs;
    private double meanTokensPerSecond;
    private long lastUsedAt;
    private int requestsInUse;

    public Backend(BackendOptions options, BackendSource source, SlotSchedulers schedulers, TimeProvider time, ManagedLlamaServer? server = null)
    {
        Options = options;
        Name = options.Name;
        Source = source;
        Server = server;
        configuredUrl = server is null ? new Uri(options.Url.TrimEnd('/') + "/") : null;
        Models = options.Models.Select(m => m.Trim()).ToArray();
        // Until the server says how many slots it has, one: never more than it can take.
        Scheduler = schedulers.Create(ModelKind.Chat, options.Name, Math.Max(1, options.Slots), options.QueueLength, TimeSpan.FromSeconds(options.DeadlineSeconds));
        this.schedulers = schedulers;
        this.time = time;
        SlotsSource = options.Slots > 0 ? "configured" : "unknown";
        lastUsedAt = time.GetTimestamp();
    }

    public BackendOptions Options { get; }
    public string Name { get; }
    public BackendSource Source { get; }

    /// <summary>The process behind a managed backend; null for a URL backend.</summary>
    public ManagedLlamaServer? Server { get; }

    /// <summary>Where requests go; null while a managed server is not running.</summary>
    public Uri? BaseUrl => Server is null ? configuredUrl : Server.BaseUrl;

    /// <summary>The backend's model id first, then its aliases.</summary>
    public IReadOnlyList<string> Models { get; }

    /// <summary>The backend's own model id (for a router without configured models, its name).</summary>
    public string ModelId => Models.Count > 0 ? Models[0] : Name;

    /// <summary>
    /// For a llama-server in router mode (<c>--models-dir</c>): the models it lists in <c>/models</c> and their load
    /// state, refreshed by every health check. Null for an ordinary server.
    /// </summary>
    public IReadOnlyList<RouterModel>? RouterModels { get; private set; }
    public SlotScheduler Scheduler { get; }
    public TimeSpan Deadline => Scheduler.QueueDeadline;

    /// <summary>Where the slot count came from: configured, props, slots, or unknown (not read yet).</summary>
    public string SlotsSource { get; private set; }

    public bool SlotsKnown => SlotsSource != "unknown";

    /// <summary>What the last health check (or failed request) found; <see cref="State"/> adds draining and the process.</summary>
    public BackendState Health { get; private set; }

    public bool Draining { get; private set; }

    /// <summary>Set when the backend is removed: requests in flight finish, none start.</summary>
    public bool Removed { get; private set; }

    public BackendState State
    {
        get
        {
            var state = Server?.State switch
            {
                null or ManagedServerState.Running => Health,
                ManagedServerState.Starting => BackendState.Loading,
                ManagedServerState.Failed => BackendState.Failed,
                _ => BackendState.Stopped,
            };

            // Draining says what happens to new requests on a server that runs; a stopped or failed one says that.
            return (Draining || Removed) && state is not (BackendState.Stopped or BackendState.Failed) ? BackendState.Draining : state;
        }
    }

    public string? LastError { get; private set; }
    public DateTimeOffset? LastCheckedAt { get; private set; }
    public double? HealthLatencyMs { get; private set; }

    /// <summary>Mean time from sending a request to the backend's response headers (exponentially weighted).</summary>
    public double? MeanFirstByteMs { get { lock (gate) { return meanFirstByteMs > 0 ? meanFirstByteMs : null; } } }

    /// <summary>Mean time from sending a request to its first token (exponentially weighted).</summary>
    public double? MeanFirstTokenMs { get { lock (gate) { return meanFirstTokenMs > 0 ? meanFirstTokenMs : null; } } }

    /// <summary>Mean generation speed after the first token (exponentially weighted).</summary>
    public double? MeanTokensPerSecond { get { lock (gate) { return meanTokensPerSecond > 0 ? meanTokensPerSecond : null; } } }

    /// <summary>Completes once the first health check has an answer, so requests at start-up wait for it rather than fail.</summary>
    public Task FirstCheck => firstCheck.Task;

    /// <summary>Requests routed here and not finished: running, waiting for a slot, or waiting for the server to start.</summary>
    public bool HasWork => Volatile.Read(ref requestsInUse) > 0; // every request routed here holds a Use() to its end

    /// <summary>Time since a request last arrived or finished here.</summary>
    public TimeSpan IdleFor => time.GetElapsedTime(Interlocked.Read(ref lastUsedAt));

    public bool Serves(string model) =>
        Models.Contains(model, StringComparer.OrdinalIgnoreCase)
        || (RouterModels?.Any(m => m.Serves(model)) ?? false);

    /// <summary>
    /// The model id sent upstream for a request that asked for <paramref name="requested"/>: the backend's own id in
    /// place of an alias; a router's models by their own ids, since the router picks the model by it.
    /// </summary>
    public string UpstreamModel(string requested) =>
        RouterModels?.FirstOrDefault(m => m.Serves(requested)) is { } routed && !Models.Contains(requested, StringComparer.OrdinalIgnoreCase)
            ? routed.Id
            : ModelId;

    public void SetRouterModels(IReadOnlyList<RouterModel> models) => RouterModels = models;

    public void SetSlots(int slots, string source)
    {
        Scheduler.Resize(slots);
        SlotsSource = source;
    }

    /// <summary>Counts a request from its routing to its end, for idle unloading and for never stopping a model at work.</summary>
    public IDisposable Use()
    {
        Touch();
        Interlocked.Increment(ref requestsInUse);
        return new Usage(this);
    }

    public void Touch() => Interlocked.Exchange(ref lastUsedAt, time.GetTimestamp());

    public void Drain() => Draining = true;

    public void Resume() => Draining = false;

    public void Remove()
    {
        Removed = true;
        schedulers.Remove(Scheduler);
    }

    /// <summary>Returns true when this changed the state (for logging transitions only).</summary>
    public bool MarkHealthy(TimeSpan latency)
    {
        bool changed;
        lock (gate)
        {
            changed = Health != BackendState.Ready;
            Health = BackendState.Ready;
            LastError = null;
            LastCheckedAt = time.GetUtcNow();
            HealthLatencyMs = Math.Round(latency.TotalMilliseconds, 2);
        }

        firstCheck.TrySetResult();
        return changed;
    }

    /// <summary><paramref name="loading"/>: the server answered that it is still loading its model (llama-server's /health 503).</summary>
    public bool MarkUnhealthy(string error, bool fromCheck, bool loading = false)
    {
        bool changed;
        var state = loading ? BackendState.Loading : BackendState.Unhealthy;
        lock (gate)
        {
            changed = Health != state;
            Health = state;
            LastError = error;
            if (fromCheck)
            {
                LastCheckedAt = time.GetUtcNow();
                HealthLatencyMs = null;
            }
        }

        firstCheck.TrySetResult();
        return changed;
    }

    /// <summary>A managed server stopped or restarts: its health is unknown until it has loaded again.</summary>
    public void ResetHealth(string? reason)
    {
        lock (gate)
        {
            Health = BackendState.Unknown;
            LastError = reason;
            HealthLatencyMs = null;
        }
    }

    public void RecordFirstByte(TimeSpan elapsed) => Average(ref meanFirstByteMs, elapsed.TotalMilliseconds);

    /// <summary>One finished (or ended) generation's time to first token and speed after it.</summary>
    public void RecordGeneration(TimeSpan? firstToken, int tokens, TimeSpan generating)
    {
        if (firstToken is { } ttft)
        {
            Average(ref meanFirstTokenMs, ttft.TotalMilliseconds);
        }

        if (tokens > 1 && generating > TimeSpan.Zero)
        {
            Average(ref meanTokensPerSecond, (tokens - 1) / generating.TotalSeconds);
        }
    }

    private void Average(ref double mean, double sample)
    {
        lock (gate)
        {
            mean = mean == 0 ? sample : (0.8 * mean) + (0.2 * sample);
        }
    }

    private sealed class Usage(Backend backend) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
            {
                Interlocked.Decrement(ref backend.requestsInUse);
                backend.Touch();
            }
        }
    }
}

/// <summary>One model behind a llama-server router, as its <c>/models</c> lists it: id, aliases, and load state.</summary>
internal sealed record RouterModel(string Id, IReadOnlyList<string> Aliases, string Status)
{
    public bool Serves(string model) =>
        string.Equals(Id, model, StringComparison.OrdinalIgnoreCase) || Aliases.Contains(model, StringComparer.OrdinalIgnoreCase);
}
