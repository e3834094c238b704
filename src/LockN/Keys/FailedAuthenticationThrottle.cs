using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Options;

namespace LockN.Keys;

/// <summary>
/// Counts failed authentications per client address in one-minute windows; an address over
/// <see cref="KeysOptions.FailedAttemptsPerMinute"/> gets 429 until its window ends, so keys cannot be guessed at speed.
/// </summary>
internal sealed class FailedAuthenticationThrottle(IOptions<KeysOptions> options, TimeProvider time)
{
    private const int MaxTrackedAddresses = 100_000;
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<IPAddress, Counter> counters = new();

    public bool IsThrottled(IPAddress? address, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (address is null || !counters.TryGetValue(address, out var counter))
        {
            return false;
        }

        lock (counter)
        {
            var elapsed = time.GetElapsedTime(counter.WindowStart);
            if (elapsed >= Window || counter.Failures < options.Value.FailedAttemptsPerMinute)
            {
                return false;
            }

            retryAfter = Window - elapsed;
            return true;
        }
    }

    public void RecordFailure(IPAddress? address)
    {
        if (address is null)
        {
            return;
        }

        if (counters.Count >= MaxTrackedAddresses)
        {
            counters.Clear();
        }

        var counter = counters.GetOrAdd(address, _ => new Counter { WindowStart = time.GetTimestamp() });
        lock (counter)
        {
            if (time.GetElapsedTime(counter.WindowStart) >= Window)
            {
                counter.WindowStart = time.GetTimestamp();
                counter.Failures = 0;
            }

            counter.Failures++;
        }
    }

    private sealed class Counter
    {
        public long WindowStart { get; set; }

        public int Failures { get; set; }
    }
}
