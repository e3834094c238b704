using System.ComponentModel.DataAnnotations;

namespace LockN.Dispatch;

/// <summary>Settings of the <c>Dispatch</c> configuration section: the local model servers behind /v1/chat/completions.</summary>
internal sealed record DispatchOptions
{
    public const string Section = "Dispatch";

    /// <summary>The most <see cref="MaxJsonDepth"/> may be: far below the depths at which llama-server's parser runs out of stack.</summary>
    public const int MaxJsonDepthLimit = 1024;

    /// <summary>The model servers, e.g. <c>Dispatch:Backends:0:Url</c> (or <c>Dispatch__Backends__0__Url</c> in the environment).</summary>
    public IReadOnlyList<BackendOptions> Backends { get; init; } = [];

    /// <summary>
    /// llama-server processes LockN starts and watches itself, e.g. <c>Dispatch:ManagedServers:0:Model</c>. Each is a
    /// backend like those of <see cref="Backends"/>, on a port LockN picks.
    /// </summary>
    public IReadOnlyList<ManagedServerOptions> ManagedServers { get; init; } = [];

    /// <summary>The llama-server executable for <see cref="ManagedServers"/>: a path, or a name looked up on the PATH.</summary>
    public string LlamaServerPath { get; init; } = "llama-server";

    /// <summary>
    /// The most memory the managed servers may hold together (the sum of their <c>MemoryMiB</c>); 0 for no limit.
    /// Starting one beyond it first stops the least recently used idle one.
    /// </summary>
    [Range(0, 64L * 1024 * 1024)]
    public long MaxResidentMemoryMiB { get; init; }

    /// <summary>How long a request waits for memory to be freed (see <see cref="MaxResidentMemoryMiB"/>) before it gets 503 insufficient_capacity.</summary>
    [Range(0, 3600)]
    public double CapacityWaitSeconds { get; init; } = 30;

    /// <summary>
    /// A request that gets no token (no event of its upstream stream) for this long is stalled: it is ended with an
    /// error, and its backend is restarted (managed) or marked unhealthy (URL). Counts the wait for the first token too.
    /// </summary>
    [Range(0.05, 86_400)]
    public double StallSeconds { get; init; } = 120;

    /// <summary>The wait before a managed server that exited is started again; doubled after each exit in a row, up to 30 s.</summary>
    [Range(0.01, 60)]
    public double RestartBackoffSeconds { get; init; } = 1;

    /// <summary>How long a managed server has after SIGTERM before it gets SIGKILL.</summary>
    [Range(0, 600)]
    public double StopGraceSeconds { get; init; } = 10;

    /// <summary>How often nodes re-read the backends added at run time (kept in the database).</summary>
    [Range(0.05, 3600)]
    public double SyncIntervalSeconds { get; init; } = 2;

    /// <summary>How often each backend's <c>/health</c> is asked.</summary>
    [Range(0.05, 3600)]
    public double HealthCheckIntervalSeconds { get; init; } = 5;

    /// <summary>A health check that takes longer than this counts as failed.</summary>
    [Range(0.05, 600)]
    public double HealthCheckTimeoutSeconds { get; init; } = 2;

    /// <summary>Largest accepted request body (base64 images make chat requests big).</summary>
    [Range(1024, 2L * 1024 * 1024 * 1024)]
    public long MaxRequestBytes { get; init; } = 64 * 1024 * 1024;

    /// <summary>
    /// Deepest nesting of objects and arrays accepted in a request body (System.Text.Json's default). A body nested
    /// far deeper crashes llama-server, so LockN refuses it with 400 before it takes a slot.
    /// </summary>
    [Range(1, MaxJsonDepthLimit)]
    public int MaxJsonDepth { get; init; } = JsonObjectScanner.DefaultMaxDepth;

    /// <summary>Request bodies up to this size are held in memory while they arrive; bigger ones go to a temporary file.</summary>
    [Range(0, 256L * 1024 * 1024)]
    public int MemorySpoolBytes { get; init; } = 1024 * 1024;

    /// <summary>Time allowed to open a connection to a backend before it counts as down.</summary>
    [Range(0.05, 600)]
    public double ConnectTimeoutSeconds { get; init; } = 5;
}

/// <summary>One llama-server process LockN runs: what it loads and how, and the backend settings in front of it.</summary>
internal sealed record ManagedServerOptions
{
    /// <summary>Shown in errors and /admin/backends, and the name in <c>/admin/backends/{name}</c>.</summary>
    public string Name { get; init; } = "";

    /// <summary>The GGUF file: a path, or a file name found under the model directories (<c>Models</c>).</summary>
    public string Model { get; init; } = "";

    /// <summary>The multimodal projector of a vision model (llama-server's <c>--mmproj</c>), found the same way.</summary>
    public string? Mmproj { get; init; }

    /// <summary>Model ids clients ask for; the first is the backend's id. Default: the model file's name without <c>.gguf</c>.</summary>
    public IReadOnlyList<string> Models { get; init; } = [];

    /// <summary>Context size in tokens, shared by the slots (<c>-c</c>); 0 for the model's own.</summary>
    public int ContextSize { get; init; } = 4096;

    /// <summary>Requests generated at once (<c>--parallel</c>); LockN's slots for it.</summary>
    public int Parallel { get; init; } = 1;

    /// <summary>Layers offloaded to the GPU (<c>-ngl</c>); unset leaves llama-server's default.</summary>
    public int? GpuLayers { get; init; }

    /// <summary>CPU threads (<c>-t</c>); unset leaves llama-server's default.</summary>
    public int? Threads { get; init; }

    /// <summary>Further llama-server arguments, one per entry (e.g. <c>--flash-attn</c>, <c>on</c>).</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    /// <summary>
    /// <c>always</c>: at LockN's start, and again whenever it exits. <c>on_demand</c>: when the first request for one
    /// of its models arrives, and stopped after <see cref="IdleUnloadSeconds"/> without one.
    /// </summary>
    public string Start { get; init; } = StartAlways;

    public const string StartAlways = "always";
    public const string StartOnDemand = "on_demand";

    public bool OnDemand => string.Equals(Start, StartOnDemand, StringComparison.OrdinalIgnoreCase);

    /// <summary>Memory the loaded model holds, counted against <c>Dispatch:MaxResidentMemoryMiB</c>.</summary>
    public long MemoryMiB { get; init; }

    /// <summary>Stop the server after this long without a request; 0 never (the default for <c>Always</c>).</summary>
    public double IdleUnloadSeconds { get; init; }

    /// <summary>How long the server may take from start to <c>/health</c> 200 before the start counts as failed.</summary>
    public double LoadTimeoutSeconds { get; init; } = 300;

    public int QueueLength { get; init; } = 16;

    public double DeadlineSeconds { get; init; } = 300;

    /// <summary>The backend settings this server is served with (its URL is known once it runs).</summary>
    public BackendOptions ToBackend() => new()
    {
        Name = Name,
        Url = "http://127.0.0.1/",
        Models = Models.Count > 0 ? Models : [Path.GetFileNameWithoutExtension(Model)],
        Slots = Parallel,
        QueueLength = QueueLength,
        DeadlineSeconds = DeadlineSeconds,
    };
}

/// <summary>One model server (typically llama.cpp's llama-server) and the model names it answers to.</summary>
internal sealed record BackendOptions
{
    /// <summary>Shown in errors, /health/ready and /admin/backends.</summary>
    public string Name { get; init; } = "";

    /// <summary>Base URL, e.g. <c>http://127.0.0.1:8081</c>; requests go to <c>{Url}/v1/chat/completions</c>.</summary>
    public string Url { get; init; } = "";

    /// <summary>Model ids clients may ask for; the first is the backend's id, the others are aliases of it.</summary>
    public IReadOnlyList<string> Models { get; init; } = [];

    /// <summary>Requests sent to the backend at once; 0 reads it from the server (llama-server's <c>/props</c>, then <c>/slots</c>).</summary>
    public int Slots { get; init; }

    /// <summary>Requests that may wait for a slot; one more is refused with 429.</summary>
    public int QueueLength { get; init; } = 16;

    /// <summary>
    /// The most a request may take here, waiting included; the upstream request is aborted when it passes.
    /// A client may ask for less with the <c>X-LockN-Deadline-Seconds</c> header.
    /// </summary>
    public double DeadlineSeconds { get; init; } = 300;

    /// <summary>Sent upstream as <c>Authorization: Bearer</c> when the model server wants its own key (llama-server's <c>--api-key</c>).</summary>
    public string? ApiKey { get; init; }
}
