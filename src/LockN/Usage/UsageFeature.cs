namespace LockN.Usage;

/// <summary>
/// What one request consumed, as its endpoint knows it. Endpoints fill it in; the usage middleware writes it to the
/// ledger with the status and latency once the response is done.
/// </summary>
internal sealed class UsageFeature
{
    /// <summary>The model that served the request (the resolved id, not an alias such as whisper-1).</summary>
    public string? Model { get; set; }

    /// <summary>Seconds of audio the request had processed.</summary>
    public double AudioSeconds { get; set; }

    public long TokensIn { get; set; }

    public long TokensOut { get; set; }

    /// <summary>
    /// The client went away before the response was done, where the request's abort token does not show it: a
    /// WebSocket dropped without a close frame ends its session, not the request.
    /// </summary>
    public bool ClientGone { get; set; }

    /// <summary>The request's usage, created on first use.</summary>
    public static UsageFeature For(HttpContext context)
    {
        if (context.Features.Get<UsageFeature>() is { } usage)
        {
            return usage;
        }

        usage = new UsageFeature();
        context.Features.Set(usage);
        return usage;
    }
}
