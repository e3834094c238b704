using System.Buffers;
using System.Net;

namespace LockN.Dispatch;

/// <summary>
/// Holds a request body between its arrival and its forwarding: in memory while small, in a temporary file (deleted
/// on close) once bigger, so a 40 MB image upload costs a file, not 40 MB of heap. The body is taken in whole before
/// a slot is asked for: a slow upload must not hold a model slot while the model waits for it.
/// </summary>
internal sealed class RequestSpool(int memoryLimit, long? expectedLength) : IAsyncDisposable
{
    // A body known to be big goes straight to a file; a small one gets its buffer sized once.
    private Stream store = expectedLength > memoryLimit ? CreateFile() : new MemoryStream((int)Math.Min(expectedLength ?? 0, memoryLimit));

    public long Length { get; private set; }

    public bool OnDisk => store is FileStream;

    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (store is MemoryStream memory && memory.Length + data.Length > memoryLimit)
        {
            var file = CreateFile();
            memory.Position = 0;
            await memory.CopyToAsync(file, cancellationToken);
            store = file;
            await memory.DisposeAsync();
        }

        await store.WriteAsync(data, cancellationToken);
        Length += data.Length;
    }

    /// <summary>Copies bytes [start, start + length) to <paramref name="destination"/>.</summary>
    public async Task CopyRangeAsync(Stream destination, long start, long length, CancellationToken cancellationToken)
    {
        if (length <= 0)
        {
            return;
        }

        if (store is MemoryStream memory)
        {
            await destination.WriteAsync(memory.GetBuffer().AsMemory((int)start, (int)length), cancellationToken);
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            store.Position = start;
            while (length > 0)
            {
                var read = await store.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length)), cancellationToken);
                if (read == 0)
                {
                    throw new EndOfStreamException("The spooled request body is shorter than expected.");
                }

                await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                length -= read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public ValueTask DisposeAsync() => store.DisposeAsync();

    private static FileStream CreateFile() =>
        new(Path.Combine(Path.GetTempPath(), "lockn-body-" + Guid.NewGuid().ToString("N")),
            FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 64 * 1024, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
}

/// <summary>A change to the spooled body on its way out: replace <c>Length</c> bytes at <c>Start</c> (0 inserts).</summary>
internal sealed record BodyEdit(long Start, long Length, byte[] Replacement);

/// <summary>The spooled body, with its edits applied as it is written to the backend; never assembled in memory.</summary>
internal sealed class SpooledJsonContent : HttpContent
{
    private readonly RequestSpool spool;
    private readonly IReadOnlyList<BodyEdit> edits;

    public SpooledJsonContent(RequestSpool spool, IEnumerable<BodyEdit> edits)
    {
        this.spool = spool;
        this.edits = edits.OrderBy(e => e.Start).ToArray();
        Headers.ContentType = new("application/json") { CharSet = "utf-8" };
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        long position = 0;
        foreach (var edit in edits)
        {
            await spool.CopyRangeAsync(stream, position, edit.Start - position, cancellationToken);
            await stream.WriteAsync(edit.Replacement, cancellationToken);
            position = edit.Start + edit.Length;
        }

        await spool.CopyRangeAsync(stream, position, spool.Length - position, cancellationToken);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = spool.Length + edits.Sum(e => e.Replacement.Length - e.Length);
        return true;
    }
}
