using System.Buffers;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace LockN.Audio;

/// <summary>
/// The 16 kHz mono samples of one decoded input: an array while short, a spool file when long (an hour is 230 MB
/// of floats, which must not sit in the server's memory). Readers take windows with <see cref="CopyTo"/>; whisper.cpp,
/// which wants the whole signal at once, maps it with <see cref="OpenMemory"/>. Disposing deletes the spool file.
/// </summary>
internal abstract class DecodedSamples : IDisposable
{
    public abstract int Length { get; }

    /// <summary>The spool file, for a reader in another process (a Whisper worker); null when held in memory.</summary>
    public abstract string? FilePath { get; }

    public double Seconds => Length / (double)DecodedAudio.SampleRate;

    public static DecodedSamples InMemory(float[] samples) => new ArraySamples(samples, samples.Length, release: null);

    /// <summary>Copies samples from <paramref name="offset"/>; returns how many (fewer at the end).</summary>
    public abstract int CopyTo(long offset, Span<float> destination);

    /// <summary>The samples as one contiguous block: the array itself, or a read-only mapping of the spool file.</summary>
    public abstract IMemoryOwner<float> OpenMemory();

    /// <summary>A copy in a new array, for callers that hold short audio (tests, benchmarks, the CLI's streaming).</summary>
    public float[] ToArray()
    {
        var copy = new float[Length];
        CopyTo(0, copy);
        return copy;
    }

    public abstract void Dispose();

    /// <summary>Opens a spool file written by <see cref="DecodedSampleWriter"/> (or a worker's copy of its path) as memory.</summary>
    public static IMemoryOwner<float> Map(string path, int length) => new MappedSamples(path, length);

    private sealed class ArraySamples(float[] samples, int length, Action? release) : DecodedSamples
    {
        private Action? release = release;

        public override int Length => length;

        public override string? FilePath => null;

        public override int CopyTo(long offset, Span<float> destination)
        {
            var count = (int)Math.Clamp(length - offset, 0, destination.Length);
            samples.AsSpan((int)Math.Min(offset, length), count).CopyTo(destination);
            return count;
        }

        public override IMemoryOwner<float> OpenMemory() => new Borrowed(samples.AsMemory(0, length));

        public override void Dispose() => Interlocked.Exchange(ref release, null)?.Invoke();
    }

    internal static DecodedSamples FromWriter(float[] samples, int length, Action release) => new ArraySamples(samples, length, release);

    internal static DecodedSamples FromSpool(string path, int length, Action release) => new SpooledSamples(path, length, release);

    /// <summary>
    /// Another process's spool file, read by path (a Whisper worker): disposing leaves the file to its owner. Opened
    /// at each read, so a file its request deleted (cancelled before the job began) fails that job only.
    /// </summary>
    public static DecodedSamples ReadSpool(string path, int length) => new SpooledSamples(path, length, release: null);

    private sealed class SpooledSamples(string path, int length, Action? release) : DecodedSamples
    {
        private int disposed;

        public override int Length => length;

        public override string? FilePath => path;

        public override int CopyTo(long offset, Span<float> destination)
        {
            var count = (int)Math.Clamp(length - offset, 0, destination.Length);
            if (count == 0)
            {
                return 0;
            }

            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var bytes = MemoryMarshal.AsBytes(destination[..count]);
            var read = 0;
            while (read < bytes.Length)
            {
                var n = RandomAccess.Read(file, bytes[read..], (offset * sizeof(float)) + read);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }

            return read / sizeof(float);
        }

        public override IMemoryOwner<float> OpenMemory() => new MappedSamples(path, length);

        public override void Dispose()
        {
            if (release is not null && Interlocked.Exchange(ref disposed, 1) == 0)
            {
                // A worker still reading it keeps its open handle's data until it closes; the name goes now.
                File.Delete(path);
                release();
            }
        }
    }

    private sealed class Borrowed(Memory<float> memory) : IMemoryOwner<float>
    {
        public Memory<float> Memory => memory;

        public void Dispose()
        {
        }
    }

    /// <summary>
    /// A read-only mapping of a spool file as <see cref="Memory{T}"/>: its pages are the file's, which the kernel may
    /// drop and re-read under pressure, instead of a private copy of the whole signal.
    /// </summary>
    private sealed unsafe class MappedSamples : MemoryManager<float>
    {
        private readonly MemoryMappedFile file;
        private readonly MemoryMappedViewAccessor view;
        private readonly int length;
        private byte* pointer;

        public MappedSamples(string path, int length)
        {
            this.length = length;
            file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
            try
            {
                view = file.CreateViewAccessor(0, (long)length * sizeof(float), MemoryMappedFileAccess.Read);
                view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
                pointer += view.PointerOffset;
            }
            catch
            {
                view?.Dispose();
                file.Dispose();
                throw;
            }
        }

        public override Span<float> GetSpan() => new(pointer, length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + ((long)elementIndex * sizeof(float)));

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
            if (pointer is not null)
            {
                pointer = null;
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                view.Dispose();
                file.Dispose();
            }
        }
    }
}
