namespace LockN.Streaming;

/// <summary>Counts open streams, on this node and per API key, so neither can grow without bound.</summary>
internal sealed class StreamLimits(Microsoft.Extensions.Options.IOptions<StreamingOptions> options)
{
    private readonly Dictionary<string, int> perKey = new(StringComparer.Ordinal);
    private readonly Lock gate = new();
    private int total;

    public int Open
    {
        get
        {
            lock (gate)
            {
                return total;
            }
        }
    }

    /// <summary>A place for one more stream, or the reason there is none.</summary>
    public (IDisposable? Lease, string? Refusal) TryEnter(string? keyId)
    {
        var key = keyId ?? "";
        lock (gate)
        {
            if (total >= options.Value.MaxStreams)
            {
                return (null, $"This server has {options.Value.MaxStreams} streams open, its limit. Try again later.");
            }

            perKey.TryGetValue(key, out var count);
            if (count >= options.Value.MaxStreamsPerKey)
            {
                return (null, $"This API key has {options.Value.MaxStreamsPerKey} streams open, its limit. Close one first.");
            }

            perKey[key] = count + 1;
            total++;
        }

        return (new Lease(this, key), null);
    }

    private void Leave(string key)
    {
        lock (gate)
        {
            total--;
            if (--perKey[key] == 0)
            {
                perKey.Remove(key);
            }
        }
    }

    private sealed class Lease(StreamLimits owner, string key) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0)
            {
                owner.Leave(key);
            }
        }
    }
}
