using System.ComponentModel.DataAnnotations;

namespace LockN.Http;

/// <summary>
/// Settings of the <c>Http</c> configuration section: the limits the front door (Kestrel) puts on every connection,
/// so idle or trickling clients cannot hold connections, memory or request slots for long.
/// </summary>
internal sealed record HttpOptions
{
    public const string Section = "Http";

    /// <summary>Open connections at once (idle keep-alive ones included); one past it is closed at once.</summary>
    [Range(1, 1_000_000)]
    public int MaxConnections { get; init; } = 1000;

    /// <summary>Upgraded (WebSocket) connections at once, counted apart from <see cref="MaxConnections"/>.</summary>
    [Range(1, 1_000_000)]
    public int MaxUpgradedConnections { get; init; } = 200;

    /// <summary>How long an idle keep-alive connection stays open (Kestrel's 130 s keeps many idle sockets around).</summary>
    [Range(1, 3600)]
    public int KeepAliveTimeoutSeconds { get; init; } = 30;

    /// <summary>Time a client has to send a request's headers once it starts.</summary>
    [Range(1, 600)]
    public int RequestHeadersTimeoutSeconds { get; init; } = 15;

    /// <summary>
    /// Slowest accepted upload, as an average over the whole body: a stall after a good start is tolerated as long as
    /// the average stays above it. 240 bytes/s is far below any working mobile link (25 MB at 240 bytes/s would take
    /// 30 hours), so it only ends connections that have all but stopped.
    /// </summary>
    [Range(1, 10_000_000)]
    public int MinRequestBodyBytesPerSecond { get; init; } = 240;

    /// <summary>Time a body may send nothing at first (a phone waking its radio, a client preparing the file).</summary>
    [Range(2, 600)] // Kestrel checks rates once a second, so a grace must be longer
    public int RequestBodyGraceSeconds { get; init; } = 10;

    /// <summary>Slowest accepted reader of an answer, measured only while LockN waits to write (a slow token stream is not slow reading).</summary>
    [Range(1, 10_000_000)]
    public int MinResponseBytesPerSecond { get; init; } = 240;

    /// <summary>Time a reader may take nothing before <see cref="MinResponseBytesPerSecond"/> applies.</summary>
    [Range(2, 600)]
    public int ResponseGraceSeconds { get; init; } = 10;

    /// <summary>Largest body of an endpoint without a limit of its own (the admin JSON APIs); uploads and Dispatch have their own.</summary>
    [Range(1024, 1L << 30)]
    public long MaxRequestBodyBytes { get; init; } = 1024 * 1024;

    public const string MaxRequestBodyBytesKey = $"{Section}:{nameof(MaxRequestBodyBytes)}";
}
