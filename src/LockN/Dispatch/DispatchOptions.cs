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
