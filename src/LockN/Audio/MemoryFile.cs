using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace LockN.Audio;

/// <summary>
/// An anonymous in-memory file (Linux memfd) that a child process can open by path and seek in, for containers
/// ffmpeg cannot read from a pipe (an m4a whose index comes after its samples). Nothing touches the disk.
/// </summary>
internal sealed partial class MemoryFile : IDisposable
{
    private const uint CloseOnExec = 1;

    private readonly FileStream stream;

    private MemoryFile(FileStream stream, string path)
    {
        this.stream = stream;
        Path = path;
    }

    /// <summary>A path that opens this file, valid while it is not disposed.</summary>
    public string Path { get; }

    /// <summary>Copies <paramref name="content"/> into a new memory file; null where the platform has none.</summary>
    public static async Task<MemoryFile?> TryCreateAsync(Stream content, CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var descriptor = MemfdCreate("lockn-audio", CloseOnExec);
        if (descriptor < 0)
        {
            return null;
        }

        var stream = new FileStream(new SafeFileHandle(descriptor, ownsHandle: true), FileAccess.ReadWrite, bufferSize: 0);
        try
        {
            await content.CopyToAsync(stream, cancellationToken);
            return new MemoryFile(stream, $"/proc/{Environment.ProcessId}/fd/{descriptor}");
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
    }

    public void Dispose() => stream.Dispose();

    [LibraryImport("libc", EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MemfdCreate(string name, uint flags);
}
