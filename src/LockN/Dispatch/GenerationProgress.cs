using System.Diagnostics.Metrics;

namespace LockN.Dispatch;

/// <summary>
/// One request's progress at its backend, known because every request is streamed upstream: when it was sent, when
/// its first token came, how many followed. It is also the stall watchdog: <see cref="Stalled"/> is cancelled when no
/// event has arrived for <c>Dispatch:StallSeconds</c> (the wait for the first token included).
/// </summary>
internal sealed class GenerationProgress : IDisposable
{
    private static readonly Meter Meter = new("LockN.Dispatch");
    private static readonly Histogram<double> FirstToken = Meter.CreateHistogram<double>("lockn.dispatch.time_to_first_token", "s", "From sending a request upstream to its first token");
    private static readonly Histogram<double> Speed = Meter.CreateHistogram<double>("lockn.dispatch.tokens_per_second", "{token}/s", "Generation speed after the first token");

    private readonly CancellationTokenSource stall;
    private readonly TimeProvider time;
    private readonly TimeSpan stallAfter;
    private readonly long sentAt;
    private long firstAt;
    private long lastAt;

    public GenerationProgress(TimeSpan stallAfter, TimeProvider time)
    {
        this.time = time;
        this.stallAfter = stallAfter;
        stall = new CancellationTokenSource(stallAfter, time);
        sentAt = time.GetTimestamp();
    }

    public CancellationToken Stalled => stall.Token;

    public TimeSpan StallAfter => stallAfter;

    /// <summary>Events received (a token each, in llama-server's streams, but for the role and usage chunks).</summary>
    public int Events { get; private set; }

    public TimeSpan? TimeToFirstToken => firstAt == 0 ? null : time.GetElapsedTime(sentAt, firstAt);

    public void Event()
    {
        var now = time.GetTimestamp();
        if (firstAt == 0)
        {
            firstAt = now;
        }

        lastAt = now;
        Events++;
        stall.CancelAfter(stallAfter);
    }

    /// <summary>Records the request's time to first token and speed on its backend and in the metrics.</summary>
    public void Report(Backend backend)
    {
        var generating = firstAt == 0 ? TimeSpan.Zero : time.GetElapsedTime(firstAt, lastAt);
        backend.RecordGeneration(TimeToFirstToken, Events, generating);
        var model = new KeyValuePair<string, object?>("model", backend.ModelId);
        if (TimeToFirstToken is { } ttft)
        {
            FirstToken.Record(ttft.TotalSeconds, model);
        }

        if (Events > 1 && generating > TimeSpan.Zero)
        {
            Speed.Record((Events - 1) / generating.TotalSeconds, model);
        }
    }

    public void Dispose() => stall.Dispose();
}
