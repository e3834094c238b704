namespace LockN.Scheduling;

/// <summary>
/// Splits the cores between models that compute at the same time. Alone, a model uses every thread its settings
/// give it; while others compute too, each busy model gets cores ÷ busy models: Whisper by running its next job with
/// fewer threads, YAMNet by running fewer computations at once. Priorities and thread counts alone do not get there:
/// Linux shares the cores by thread, and ggml's threads wait for each other at every step, so a two-thread Whisper
/// sharing two cores thread for thread with two YAMNet runs lost time at each barrier and ran 2.7× slower than alone.
/// Written here because it is a policy between LockN's own models, not something a library knows about.
/// </summary>
internal sealed class CoreShares
{
    /// <summary>
    /// How long a model still counts as busy after its last computation ended, so that one fed back to back (a client
    /// looping requests, with a few milliseconds of upload and decoding between them) keeps its share between them.
    /// </summary>
    public static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(250);

    // A computation waiting for a share re-checks this often: another model's linger ends without anyone to signal it.
    private static readonly TimeSpan Recheck = TimeSpan.FromMilliseconds(20);

    // A plain object, not a Lock: waiting for a share needs Monitor.Wait, which Lock does not offer.
    private readonly object gate = new();
    private readonly Dictionary<string, Activity> models = new(StringComparer.Ordinal);
    private readonly TimeProvider time;

    public CoreShares(TimeProvider time, int cores, bool enabled)
    {
        this.time = time;
        Cores = Math.Max(1, cores);
        Enabled = enabled;
    }

    public int Cores { get; }

    /// <summary>False when <c>Scheduling:ShareCores</c> is off: every model then uses all its threads all the time.</summary>
    public bool Enabled { get; }

    public static CoreShares FromConfiguration(TimeProvider time, IConfiguration configuration) =>
        new(time, Environment.ProcessorCount, configuration.GetValue("Scheduling:ShareCores", true));

    /// <summary>Marks <paramref name="model"/> as computing until the lease is disposed.</summary>
    public IDisposable Enter(string model)
    {
        lock (gate)
        {
            ActivityOf(model).Running++;
        }

        return new Lease(this, model);
    }

    /// <summary>The threads <paramref name="model"/> may use now: <paramref name="wanted"/>, or its share of the cores when others compute.</summary>
    public int ThreadsFor(string model, int wanted)
    {
        lock (gate)
        {
            return Math.Max(1, Math.Min(wanted, ShareOf(model)));
        }
    }

    /// <summary>
    /// Blocks the calling thread (one of the model's own compute threads, never a request thread) until one more
    /// computation of <paramref name="threadsPerRun"/> threads fits in <paramref name="model"/>'s share, then marks it
    /// as computing until the lease is disposed. At least one computation always runs.
    /// </summary>
    public IDisposable EnterComputation(string model, int threadsPerRun, int maxConcurrent, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var activity = ActivityOf(model);
                var allowed = Math.Max(1, Math.Min(maxConcurrent, ShareOf(model) / Math.Max(1, threadsPerRun)));
                if (activity.Running < allowed)
                {
                    activity.Running++;
                    return new Lease(this, model);
                }

                Monitor.Wait(gate, Recheck);
            }
        }
    }

    private int ShareOf(string model)
    {
        if (!Enabled)
        {
            return Cores;
        }

        var now = time.GetUtcNow();
        var busy = 1 + models.Count(m => m.Key != model && (m.Value.Running > 0 || now - m.Value.LastEnded < Linger));
        return Math.Max(1, Cores / busy);
    }

    private Activity ActivityOf(string model)
    {
        if (!models.TryGetValue(model, out var activity))
        {
            models[model] = activity = new Activity();
        }

        return activity;
    }

    private void Leave(string model)
    {
        lock (gate)
        {
            var activity = models[model];
            activity.Running--;
            activity.LastEnded = time.GetUtcNow();
            Monitor.PulseAll(gate);
        }
    }

    private sealed class Activity
    {
        public int Running { get; set; }
        public DateTimeOffset LastEnded { get; set; } = DateTimeOffset.MinValue;
    }

    private sealed class Lease(CoreShares shares, string model) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
            {
                shares.Leave(model);
            }
        }
    }
}
