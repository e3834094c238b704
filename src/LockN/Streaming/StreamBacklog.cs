namespace LockN.Streaming;

/// <summary>
/// Audio of one stream received but not yet transcribed or classified, in samples. Each worker adds what it queues
/// and releases what it has done; past the limit the stream takes no more audio, so memory stays bounded.
/// </summary>
internal sealed class StreamBacklog(long limit)
{
    private long waiting;

    public bool Exceeded => Interlocked.Read(ref waiting) > limit;

    public void Add(long samples) => Interlocked.Add(ref waiting, samples);

    public void Release(long samples) => Interlocked.Add(ref waiting, -samples);
}
