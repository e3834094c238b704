using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using LockN.Http;
using LockN.Storage;
using Microsoft.Win32.SafeHandles;

namespace LockN.Usage;

/// <summary>
/// The usage ledger's journal in the data directory's <c>usage-journal</c> folder, so that a killed process loses no
/// usage record. Each record the recorder queues is appended as one line of JSON to the current segment file in the
/// same step, before the request goes on: a write to the OS's page cache, which survives the process (fsync, which
/// also survives power loss, is left to <see cref="Sync"/> on a timer). A segment is deleted once every record in it
/// is in the database; segments left by an earlier run are <see cref="Leftovers"/>, for the writer to replay.
/// </summary>
internal sealed partial class UsageJournal : IDisposable
{
    public const string FolderName = "usage-journal";

    private const string Extension = ".jsonl";

    // Past this a segment takes no more records, so one that is being written to the database all the time still ends.
    private const long SegmentBytes = 4 * 1024 * 1024;

    private static readonly TimeSpan ReopenDelay = TimeSpan.FromMinutes(1);

    private readonly Lock gate = new();
    private readonly List<JournalSegment> segments = [];
    private readonly ArrayBufferWriter<byte> line = new(1024);
    private readonly Utf8JsonWriter json;
    private readonly TimeProvider time;
    private readonly ILogger logger;
    private JournalSegment? current;
    private long nextNumber;
    private long reopenAt;
    private bool disposed;

    public UsageJournal(string directory, TimeProvider time, ILogger logger)
    {
        Directory = directory;
        this.time = time;
        this.logger = logger;
        json = new Utf8JsonWriter(line);
        System.IO.Directory.CreateDirectory(directory);
        var leftovers = System.IO.Directory.EnumerateFiles(directory, "*" + Extension)
            .Select(path => (Path: path, Number: SegmentNumber(path)))
            .Where(s => s.Number >= 0)
            .OrderBy(s => s.Number)
            .ToList();
        Leftovers = [.. leftovers.Select(s => s.Path)];
        nextNumber = leftovers.Count > 0 ? leftovers[^1].Number + 1 : 1;
    }

    public string Directory { get; }

    /// <summary>Segment files an earlier run left, oldest first: records that may not be in the database yet.</summary>
    public IReadOnlyList<string> Leftovers { get; }

    /// <summary>Segment files of this run not yet deleted.</summary>
    public int Segments
    {
        get
        {
            lock (gate)
            {
                return segments.Count;
            }
        }
    }

    /// <summary>
    /// Queues the record and appends it to the journal as one step, so records reach the journal in queue order and a
    /// record is journaled only if it was queued. False, with nothing written, when the queue refuses it. A journal
    /// that cannot be written does not refuse the record: it is queued without a segment (and logged).
    /// </summary>
    public bool TryAppend(UsageRecord record, ChannelWriter<JournalEntry> queue)
    {
        lock (gate)
        {
            var segment = Current();
            if (!queue.TryWrite(new JournalEntry(record, segment)))
            {
                return false;
            }

            if (segment is not null)
            {
                // Counted before the write: the writer cannot see the entry done before this lock is released.
                segment.Pending++;
                Write(segment, record);
            }

            return true;
        }
    }

    /// <summary>The writer has put these entries in the database (or given them up): segments they emptied are deleted.</summary>
    public void Done(List<JournalEntry> entries)
    {
        List<JournalSegment>? finished = null;
        lock (gate)
        {
            foreach (var entry in entries)
            {
                if (entry.Segment is { } segment && --segment.Pending == 0 && (segment.Sealed || segment == current))
                {
                    // The current segment too: the next record starts a new file, so an idle journal is empty.
                    segment.Sealed = true;
                    if (segment == current)
                    {
                        current = null;
                    }

                    segments.Remove(segment);
                    (finished ??= []).Add(segment);
                }
            }
        }

        foreach (var segment in finished ?? [])
        {
            Delete(segment);
        }
    }

    /// <summary>Forces what was appended since the last call to the disk (fsync), so power loss cannot take it.</summary>
    public void Sync()
    {
        List<JournalSegment> dirty;
        lock (gate)
        {
            dirty = [.. segments.Where(s => s.Dirty)];
            foreach (var segment in dirty)
            {
                segment.Dirty = false;
            }
        }

        foreach (var segment in dirty)
        {
            try
            {
                RandomAccess.FlushToDisk(segment.Handle);
            }
            catch (ObjectDisposedException)
            {
                // Deleted meanwhile: everything in it is in the database.
            }
            catch (IOException ex)
            {
                LogSyncFailed(logger, segment.Path, ex.Message);
            }
        }
    }

    /// <summary>The records of a leftover segment; a line that is not a whole record (cut by power loss) is skipped and counted.</summary>
    public static List<UsageRecord> Read(string path, out int unreadable)
    {
        unreadable = 0;
        var records = new List<UsageRecord>();
        foreach (var text in File.ReadLines(path))
        {
            if (text.Length == 0)
            {
                continue;
            }

            try
            {
                if (JsonSerializer.Deserialize(text, LockNJson.Context.UsageRecord) is { JournalId: not null } record)
                {
                    records.Add(record);
                    continue;
                }
            }
            catch (JsonException)
            {
            }

            unreadable++;
        }

        return records;
    }

    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
            current = null;
            foreach (var segment in segments)
            {
                // One with records the database does not have yet stays, for the next start.
                if (segment.Pending == 0)
                {
                    Delete(segment);
                }
                else
                {
                    segment.Handle.Dispose();
                }
            }

            segments.Clear();
            json.Dispose();
        }
    }

    private JournalSegment? Current()
    {
        if (current is not null || disposed)
        {
            return current;
        }

        var now = time.GetTimestamp();
        if (now < reopenAt)
        {
            return null;
        }

        var path = Path.Combine(Directory, nextNumber.ToString("D12", CultureInfo.InvariantCulture) + Extension);
        try
        {
            current = new JournalSegment(path, File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete));
            nextNumber++;
            segments.Add(current);
            return current;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            nextNumber++; // a name that is taken stays taken
            reopenAt = now + (long)(ReopenDelay.TotalSeconds * time.TimestampFrequency);
            LogUnavailable(logger, path, ReopenDelay.TotalSeconds, ex.Message);
            return null;
        }
    }

    /// <summary>Deletes a segment whose records are all in the database; one that cannot be is replayed (and skipped) at the next start.</summary>
    public void Delete(JournalSegment segment)
    {
        try
        {
            segment.Handle.Dispose();
            File.Delete(segment.Path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogDeleteFailed(logger, segment.Path, ex.Message);
        }
    }

    private void Write(JournalSegment segment, UsageRecord record)
    {
        line.ResetWrittenCount();
        json.Reset(line);
        try
        {
            JsonSerializer.Serialize(json, record, LockNJson.Context.UsageRecord);
            json.Flush();
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or InvalidOperationException)
        {
            // A value JSON cannot hold (NaN seconds, say) must not fail the request; the record is still queued.
            LogWriteFailed(logger, segment.Path, ex.Message);
            return;
        }

        line.Write("\n"u8);
        try
        {
            RandomAccess.Write(segment.Handle, line.WrittenSpan, segment.Length);
            segment.Length += line.WrittenCount;
            segment.Dirty = true;
        }
        catch (IOException ex)
        {
            // The record is still queued for the database; the journal goes on in a new segment.
            LogWriteFailed(logger, segment.Path, ex.Message);
            segment.Length = long.MaxValue;
        }

        if (segment.Length >= SegmentBytes)
        {
            segment.Sealed = true;
            current = null;
        }
    }

    private static long SegmentNumber(string path) =>
        long.TryParse(Path.GetFileNameWithoutExtension(path), NumberStyles.None, CultureInfo.InvariantCulture, out var number) ? number : -1;

    [LoggerMessage(Level = LogLevel.Error, Message = "Usage journal {Path} cannot be created ({Message}); records are queued without it for {Seconds} s and are lost if the process is killed")]
    private static partial void LogUnavailable(ILogger logger, string path, double seconds, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing usage journal {Path} failed: {Message}")]
    private static partial void LogWriteFailed(ILogger logger, string path, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deleting usage journal {Path} failed ({Message}); the next start replays it and skips what the ledger has")]
    private static partial void LogDeleteFailed(ILogger logger, string path, string message);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Syncing usage journal {Path} to disk failed: {Message}")]
    private static partial void LogSyncFailed(ILogger logger, string path, string message);
}

/// <summary>A queued usage record and the journal segment that holds it (null when the journal could not take it).</summary>
internal readonly record struct JournalEntry(UsageRecord Record, JournalSegment? Segment);

/// <summary>One journal file of this run. Its fields change under the journal's lock only.</summary>
internal sealed class JournalSegment(string path, SafeFileHandle handle)
{
    public string Path { get; } = path;

    public SafeFileHandle Handle { get; } = handle;

    public long Length { get; set; }

    /// <summary>Records in this segment not yet in the database.</summary>
    public int Pending { get; set; }

    /// <summary>Takes no more records.</summary>
    public bool Sealed { get; set; }

    /// <summary>Written since the last fsync.</summary>
    public bool Dirty { get; set; }
}
