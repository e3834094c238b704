using System.Threading.RateLimiting;

namespace LockN.Keys;

/// <summary>
/// One key's requests per minute: a sliding window of twelve 5-second segments that never queues, and tells a refused
/// request when enough of the window has slid past for it to fit. Written here because ASP.NET's
/// SlidingWindowRateLimiter reads the system clock and cannot take a <see cref="TimeProvider"/>.
/// </summary>
internal sealed class RequestsPerMinuteLimiter : RateLimiter
{
    private const int Segments = 12;
    private static readonly TimeSpan SegmentLength = TimeSpan.FromMinutes(1) / Segments;

    private readonly Lock gate = new();
    private readonly int permitLimit;
    private readonly TimeProvider time;
    private readonly long origin;

    // Permits taken in each of the last Segments segments, indexed by segment number modulo Segments.
    private readonly int[] taken = new int[Segments];
    private long currentSegment;
    private long lastAcquiredSegment = -Segments; // never used: idle since it was made
    private int inWindow;
    private long successes;
    private long failures;

    public RequestsPerMinuteLimiter(int permitLimit, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(permitLimit, 1);
        this.permitLimit = permitLimit;
        this.time = time;
        origin = time.GetTimestamp();
    }

    /// <summary>How long the window has been empty, so the partitioned limiter can drop a key nobody uses.</summary>
    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (gate)
            {
                var now = Elapsed();
                Slide(SegmentOf(now));
                if (inWindow > 0)
                {
                    return null;
                }

                return now - ((lastAcquiredSegment + Segments) * SegmentLength);
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (gate)
        {
            Slide(SegmentOf(Elapsed()));
            return new RateLimiterStatistics
            {
                CurrentAvailablePermits = permitLimit - inWindow,
                CurrentQueuedCount = 0,
                TotalSuccessfulLeases = successes,
                TotalFailedLeases = failures,
            };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(permitCount, permitLimit);
        lock (gate)
        {
            var now = Elapsed();
            var segment = SegmentOf(now);
            Slide(segment);
            if (inWindow + permitCount <= permitLimit)
            {
                taken[segment % Segments] += permitCount;
                inWindow += permitCount;
                lastAcquiredSegment = segment;
                successes++;
                return Lease.Acquired;
            }

            failures++;
            return new Lease(RetryAfter(segment, now, permitCount));
        }
    }

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(AttemptAcquireCore(permitCount)); // never queues: a refused request is answered 429 at once
    }

    private TimeSpan Elapsed() => time.GetElapsedTime(origin);

    private static long SegmentOf(TimeSpan elapsed) => elapsed.Ticks / SegmentLength.Ticks;

    /// <summary>Forgets the segments that have left the window by <paramref name="segment"/>.</summary>
    private void Slide(long segment)
    {
        for (var next = currentSegment + 1; next <= segment && next <= currentSegment + Segments; next++)
        {
            inWindow -= taken[next % Segments];
            taken[next % Segments] = 0;
        }

        currentSegment = Math.Max(currentSegment, segment);
    }

    /// <summary>Until the oldest segments holding enough permits have left the window.</summary>
    private TimeSpan RetryAfter(long segment, TimeSpan now, int permitCount)
    {
        var freed = 0;
        for (var oldest = segment - Segments + 1; oldest <= segment; oldest++)
        {
            if (oldest < 0)
            {
                continue;
            }

            freed += taken[oldest % Segments];
            if (inWindow - freed + permitCount <= permitLimit)
            {
                return ((oldest + Segments) * SegmentLength) - now;
            }
        }

        return TimeSpan.FromMinutes(1);
    }

    private sealed class Lease(TimeSpan? retryAfter) : RateLimitLease
    {
        public static readonly Lease Acquired = new(null);

        public override bool IsAcquired => retryAfter is null;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            var known = retryAfter is not null && metadataName == MetadataName.RetryAfter.Name;
            metadata = known ? retryAfter : null;
            return known;
        }
    }
}
