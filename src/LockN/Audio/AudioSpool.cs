using System.Runtime.InteropServices;
using LockN.Hosting;
using Microsoft.Extensions.Options;

namespace LockN.Audio;

/// <summary>
/// Where decoded audio is kept while a request uses it. Short inputs stay in memory, charged to one node-wide budget
/// (<see cref="AudioOptions.MaxDecodedMemoryMiB"/>); an input longer than <see cref="AudioOptions.SpoolAfterSeconds"/>,
/// or one that finds the budget spent, is written to a file in the data directory's <c>spool</c> folder instead, so
/// the server's memory does not grow with the length or the number of uploads. The folder is emptied at start-up
/// (files left by a killed process).
/// </summary>
internal sealed partial class AudioSpool
{
    public const string FolderName = "spool";

    private readonly long budgetBytes;
    private readonly long diskBudgetBytes;
    private readonly int inMemorySamples;
    private readonly ILogger<AudioSpool> logger;
    private long reservedBytes;
    private long spooledBytes;
    private long spooledInputs;

    public AudioSpool(IOptions<AudioOptions> options, IConfiguration configuration, ILogger<AudioSpool> logger)
        : this(Path.Combine(LockNConfiguration.DataDirectory(configuration), FolderName), options.Value, logger)
    {
    }

    internal AudioSpool(string directory, AudioOptions options, ILogger<AudioSpool> logger)
    {
        Directory = directory;
        budgetBytes = (long)options.MaxDecodedMemoryMiB * 1024 * 1024;
        diskBudgetBytes = (long)options.MaxSpoolMiB * 1024 * 1024;
        inMemorySamples = options.SpoolAfterSeconds * DecodedAudio.SampleRate;
        this.logger = logger;
        System.IO.Directory.CreateDirectory(directory);
        foreach (var stale in System.IO.Directory.EnumerateFiles(directory, "*.f32"))
        {
            File.Delete(stale);
        }
    }

    public string Directory { get; }

    /// <summary>Bytes of decoded audio held in memory right now, across every request.</summary>
    public long InMemoryBytes => Interlocked.Read(ref reservedBytes);

    public long BudgetBytes => budgetBytes;

    /// <summary>How many inputs have gone to a spool file since start-up.</summary>
    public long SpooledInputs => Interlocked.Read(ref spooledInputs);

    /// <summary>Bytes of decoded audio in spool files right now, across every request.</summary>
    public long SpooledBytes => Interlocked.Read(ref spooledBytes);

    public DecodedSampleWriter CreateWriter(long expectedSamples) => new(this, expectedSamples);

    /// <summary>The most samples one input keeps in memory before it goes to a file.</summary>
    internal int InMemorySamples => inMemorySamples;

    internal bool TryReserve(long bytes) => TryAdd(ref reservedBytes, bytes, budgetBytes);

    internal void Release(long bytes) => Interlocked.Add(ref reservedBytes, -bytes);

    internal bool TryReserveDisk(long bytes) => TryAdd(ref spooledBytes, bytes, diskBudgetBytes);

    internal void ReleaseDisk(long bytes) => Interlocked.Add(ref spooledBytes, -bytes);

    private static bool TryAdd(ref long total, long bytes, long budget)
    {
        while (true)
        {
            var current = Interlocked.Read(ref total);
            if (current + bytes > budget)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref total, current + bytes, current) == current)
            {
                return true;
            }
        }
    }

    internal FileStream CreateFile(out string path)
    {
        var name = $"{Guid.NewGuid():N}.f32";
        path = Path.Combine(Directory, name);
        Interlocked.Increment(ref spooledInputs);
        LogSpooling(logger, name);
        return new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete, bufferSize: 64 * 1024);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Decoded audio goes to spool file {File}")]
    private static partial void LogSpooling(ILogger logger, string file);
}

/// <summary>
/// Receives one input's 16 kHz samples as they are decoded. Holds them in an array charged to the spool's budget
/// until they pass the in-memory limit or the budget is spent, then moves them to a spool file and appends there.
/// Without a spool (the CLI's in-process commands) everything stays in memory.
/// </summary>
internal sealed class DecodedSampleWriter : IDisposable
{
    private const int MinimumCapacity = 16 * 1024;

    private readonly AudioSpool? spool;
    private float[]? buffer;
    private long reservedBytes;
    private long spooledBytes;
    private int count;
    private FileStream? file;
    private string? path;

    public DecodedSampleWriter(AudioSpool? spool, long expectedSamples)
    {
        this.spool = spool;
        var limit = spool?.InMemorySamples ?? Array.MaxLength;

        // Sized from the header when it fits in memory, so an honest header means no regrowth; a header may lie, so the
        // first array is capped and the buffer grows with what really arrives.
        var initial = (int)Math.Clamp(expectedSamples, Math.Min(MinimumCapacity, limit), Math.Min(limit, 1024 * 1024));
        if (expectedSamples > limit || !Reserve(initial))
        {
            StartSpool();
        }
        else
        {
            buffer = new float[initial];
        }
    }

    public int Count => count;

    public void Append(ReadOnlySpan<float> samples)
    {
        if (samples.IsEmpty)
        {
            return;
        }

        if ((long)count + samples.Length > int.MaxValue)
        {
            throw new InvalidDataException("The decoded audio is longer than one input can be.");
        }

        if (buffer is not null && count + samples.Length > buffer.Length)
        {
            Grow(count + samples.Length);
        }

        if (buffer is not null)
        {
            samples.CopyTo(buffer.AsSpan(count));
        }
        else
        {
            WriteToFile(samples);
        }

        count += samples.Length;
    }

    /// <summary>The samples written; the writer gives up ownership (dispose the result, not the writer, after this).</summary>
    public DecodedSamples Finish()
    {
        if (file is not null)
        {
            file.Dispose();
            file = null;
            var owner = spool!;
            var bytes = spooledBytes;
            var spooled = DecodedSamples.FromSpool(path!, count, () =>
            {
                owner.ReleaseDisk(bytes);
                MemoryGiveBack.AfterLongRequest();
            });
            path = null;
            spooledBytes = 0;
            return spooled;
        }

        var samples = buffer!;
        var reserved = reservedBytes;
        buffer = null;
        reservedBytes = 0;
        var budget = spool;
        return DecodedSamples.FromWriter(samples, count, () => budget?.Release(reserved));
    }

    /// <summary>Abandons what was written (a decode that failed): the memory goes back to the budget, the file is deleted.</summary>
    public void Dispose()
    {
        spool?.Release(reservedBytes);
        reservedBytes = 0;
        buffer = null;
        file?.Dispose();
        file = null;
        if (path is not null)
        {
            File.Delete(path);
            path = null;
        }

        spool?.ReleaseDisk(spooledBytes);
        spooledBytes = 0;
    }

    private void Grow(int needed)
    {
        var limit = spool?.InMemorySamples ?? Array.MaxLength;
        var size = (int)Math.Min(Math.Max((long)buffer!.Length * 2, needed), limit);
        if (needed > limit || !Reserve(size - buffer.Length))
        {
            StartSpool();
            return;
        }

        Array.Resize(ref buffer, size);
    }

    private bool Reserve(int samples)
    {
        if (spool is null)
        {
            return true;
        }

        var bytes = (long)samples * sizeof(float);
        if (!spool.TryReserve(bytes))
        {
            return false;
        }

        reservedBytes += bytes;
        return true;
    }

    private void StartSpool()
    {
        file = spool!.CreateFile(out path);
        if (buffer is not null)
        {
            WriteToFile(buffer.AsSpan(0, count));
            buffer = null;
        }

        spool.Release(reservedBytes);
        reservedBytes = 0;
    }

    private void WriteToFile(ReadOnlySpan<float> samples)
    {
        var bytes = (long)samples.Length * sizeof(float);
        if (!spool!.TryReserveDisk(bytes))
        {
            throw new SpoolFullException();
        }

        spooledBytes += bytes;
        file!.Write(MemoryMarshal.AsBytes(samples));
    }
}

/// <summary>The spool's disk budget (<see cref="AudioOptions.MaxSpoolMiB"/>) is spent: the upload waits for none, it is refused.</summary>
internal sealed class SpoolFullException : IOException
{
    public SpoolFullException()
        : base("The audio spool's disk budget is spent.")
    {
    }
}
