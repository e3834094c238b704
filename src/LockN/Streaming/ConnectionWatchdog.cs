namespace LockN.Streaming;

/// <summary>What a connection's clock asks for.</summary>
internal enum ConnectionAlarm
{
    /// <summary>The watchdog was disposed.</summary>
    None,

    /// <summary>Nothing was sent for the keepalive interval.</summary>
    KeepAlive,

    /// <summary>Nothing was received for the idle timeout.</summary>
    Idle,
}

/// <summary>
/// The time rules of a streaming connection, on the injected clock: idle when nothing was received for the idle
/// timeout, due a keepalive when nothing was sent for the keepalive interval. Looked at about once a second, and
/// at least twice per keepalive interval. The timer starts with the watchdog, so a test clock can be advanced as
/// soon as it exists.
/// </summary>
internal sealed class ConnectionWatchdog : IDisposable
{
    private readonly TimeSpan idleTimeout;
    private readonly TimeSpan keepAlive;
    private readonly TimeProvider time;
    private readonly PeriodicTimer timer;
    private long lastReceivedAt;
    private long lastSentAt;

    public ConnectionWatchdog(TimeSpan idleTimeout, TimeSpan keepAlive, TimeProvider time)
    {
        this.idleTimeout = idleTimeout;
        this.keepAlive = keepAlive;
        this.time = time;
        timer = new PeriodicTimer(TimeSpan.FromTicks(Math.Min(TimeSpan.TicksPerSecond, keepAlive.Ticks / 2)), time);
        lastReceivedAt = lastSentAt = time.GetTimestamp();
    }

    public void Received() => Volatile.Write(ref lastReceivedAt, time.GetTimestamp());

    public void Sent() => Volatile.Write(ref lastSentAt, time.GetTimestamp());

    /// <summary>Waits for the next look at the clock that finds the connection idle or due a keepalive.</summary>
    public async Task<ConnectionAlarm> WaitAsync(CancellationToken cancellationToken)
    {
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            if (time.GetElapsedTime(Volatile.Read(ref lastReceivedAt)) >= idleTimeout)
            {
                return ConnectionAlarm.Idle;
            }

            if (time.GetElapsedTime(Volatile.Read(ref lastSentAt)) >= keepAlive)
            {
                return ConnectionAlarm.KeepAlive;
            }
        }

        return ConnectionAlarm.None;
    }

    public void Dispose() => timer.Dispose();
}
