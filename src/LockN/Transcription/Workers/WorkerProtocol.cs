using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using LockN.Audio;

namespace LockN.Transcription.Workers;

/// <summary>
/// The pipe protocol between the server and a Whisper worker process, which runs one job per lane (one lane per slot
/// of its model, all sharing one loaded model). Server → worker (stdin, binary):
/// <c>[1][int32 lane][int32 json length][job json][int32 sample count][float32 samples]</c> starts a job on a lane
/// (a spooled input goes by name instead: <c>[int32 -1][int32 path length][utf8 path][int32 sample count]</c>, and the
/// worker maps the file rather than receiving a copy of it),
/// <c>[2][int32 lane]</c> cancels the lane's job; end of stdin means "exit". Frames are written whole, one at a time.
/// Worker → server (stdout): one JSON <see cref="WorkerEvent"/> per line, naming its lane.
/// </summary>
internal static class WorkerProtocol
{
    public const byte StartJob = 1;
    public const byte CancelJob = 2;

    // Guards against a corrupt frame turning into a huge allocation: four hours of 16 kHz audio.
    private const int MaxSamples = 16000 * 60 * 60 * 4;
    private const int MaxJsonBytes = 1 << 20;
    private const int MaxPathBytes = 4096;
    private const int SpooledMarker = -1;
    private const int ChunkBytes = 1 << 16;

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static async Task WriteJobAsync(Stream output, int lane, WhisperJob job, DecodedSamples samples, CancellationToken cancellationToken)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(job, Json);
        var path = samples.FilePath is { } file ? Encoding.UTF8.GetBytes(file) : null;
        var header = new byte[1 + 4 + 4 + json.Length + 4 + (path is null ? 0 : 4 + path.Length + 4)];
        header[0] = StartJob;
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(1), lane);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(5), json.Length);
        json.CopyTo(header, 9);
        var at = 9 + json.Length;
        if (path is not null)
        {
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(at), SpooledMarker);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(at + 4), path.Length);
            path.CopyTo(header, at + 8);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(at + 8 + path.Length), samples.Length);
            await output.WriteAsync(header, cancellationToken);
            await output.FlushAsync(cancellationToken);
            return;
        }

        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(at), samples.Length);
        await output.WriteAsync(header, cancellationToken);

        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            for (var offset = 0; offset < samples.Length;)
            {
                var count = samples.CopyTo(offset, MemoryMarshal.Cast<byte, float>(buffer.AsSpan(0, ChunkBytes)));
                await output.WriteAsync(buffer.AsMemory(0, count * sizeof(float)), cancellationToken);
                offset += count;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        await output.FlushAsync(cancellationToken);
    }

    public static async Task WriteCancelAsync(Stream output, int lane)
    {
        var frame = new byte[5];
        frame[0] = CancelJob;
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(1), lane);
        await output.WriteAsync(frame);
        await output.FlushAsync();
    }

    public static Task<int> ReadLaneAsync(Stream input, CancellationToken cancellationToken) => ReadInt32Async(input, cancellationToken);

    /// <summary>Reads the next frame kind, or null at end of stream.</summary>
    public static async Task<byte?> ReadKindAsync(Stream input, CancellationToken cancellationToken)
    {
        var kind = new byte[1];
        var read = await input.ReadAsync(kind, cancellationToken);
        return read == 0 ? null : kind[0];
    }

    /// <summary>Reads a job frame; the samples are an array, or the server's spool file, read a piece at a time.</summary>
    public static async Task<(WhisperJob Job, DecodedSamples Samples)> ReadJobAsync(Stream input, CancellationToken cancellationToken)
    {
        var jsonLength = await ReadInt32Async(input, cancellationToken);
        if (jsonLength is < 0 or > MaxJsonBytes)
        {
            throw new InvalidDataException($"Job header of {jsonLength} bytes is out of range.");
        }

        var json = new byte[jsonLength];
        await input.ReadExactlyAsync(json, cancellationToken);
        var job = JsonSerializer.Deserialize<WhisperJob>(json, Json) ?? throw new InvalidDataException("Empty job.");
        var count = await ReadInt32Async(input, cancellationToken);
        if (count == SpooledMarker)
        {
            var pathLength = await ReadInt32Async(input, cancellationToken);
            if (pathLength is < 1 or > MaxPathBytes)
            {
                throw new InvalidDataException($"Spool path of {pathLength} bytes is out of range.");
            }

            var path = new byte[pathLength];
            await input.ReadExactlyAsync(path, cancellationToken);
            var spooled = await ReadInt32Async(input, cancellationToken);
            if (spooled is < 1 or > MaxSamples)
            {
                throw new InvalidDataException($"Job of {spooled} samples is out of range.");
            }

            return (job, DecodedSamples.ReadSpool(Encoding.UTF8.GetString(path), spooled));
        }

        if (count is < 0 or > MaxSamples)
        {
            throw new InvalidDataException($"Job of {count} samples is out of range.");
        }

        var samples = new float[count];
        var bytes = new byte[Math.Min(ChunkBytes, count * sizeof(float))];
        for (var offset = 0; offset < count;)
        {
            var n = Math.Min(bytes.Length / sizeof(float), count - offset);
            await input.ReadExactlyAsync(bytes.AsMemory(0, n * sizeof(float)), cancellationToken);
            MemoryMarshal.Cast<byte, float>(bytes.AsSpan(0, n * sizeof(float))).CopyTo(samples.AsSpan(offset));
            offset += n;
        }

        return (job, DecodedSamples.InMemory(samples));
    }

    private static async Task<int> ReadInt32Async(Stream input, CancellationToken cancellationToken)
    {
        var bytes = new byte[4];
        await input.ReadExactlyAsync(bytes, cancellationToken);
        return BinaryPrimitives.ReadInt32LittleEndian(bytes);
    }
}

internal enum WorkerEventType
{
    Ready,
    Segment,
    Progress,
    Done,
    Cancelled,
    Error,
}

internal sealed record WorkerEvent(
    [property: JsonConverter(typeof(JsonStringEnumConverter<WorkerEventType>))] WorkerEventType Type,
    TranscriptSegment? Segment = null,
    int? Progress = null,
    string? Message = null,
    WhisperRuntimeInfo? Runtime = null,
    int Lane = 0);
