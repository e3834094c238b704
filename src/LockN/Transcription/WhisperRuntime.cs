using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LockN.Transcription.Native;

namespace LockN.Transcription;

/// <summary>Which whisper.cpp library a process transcribes with, as /health/ready and the logs show it.</summary>
/// <param name="Source"><c>native</c> (from <c>Transcription:NativeRuntimePath</c>) or <c>packaged</c> (Whisper.net's own build).</param>
/// <param name="Library">The libwhisper file the process actually mapped (full path; /health/ready shows the file name only).</param>
/// <param name="SystemInfo">whisper.cpp's own line of compiled-in features (AVX512, CUDA, OPENMP…).</param>
internal sealed record WhisperRuntimeInfo(string Source, string? Library, string? SystemInfo, bool FlashAttention);

internal sealed class WhisperRuntimeException(string message) : Exception(message);

/// <summary>
/// Loads whisper.cpp once per process: the libraries in <c>Transcription:NativeRuntimePath</c>, or else the build
/// packaged in Whisper.net.Runtime (AVX2, beside the executable). Whisper.net's own loader falls back to its packaged
/// build without a word when another fails to load; an operator who built whisper.cpp for the machine must know it
/// runs. So LockN loads the libraries itself, by full path, and fails when any of them does not load.
/// </summary>
internal static unsafe partial class WhisperRuntime
{
    public const string NativeRuntimeKey = TranscriptionOptions.Section + ":" + nameof(TranscriptionOptions.NativeRuntimePath);

    // ggml's pieces before whisper itself; the backends that are present are loaded, the others skipped.
    private static readonly string[] Optional = ["ggml-cpu", "ggml-blas", "ggml-cuda", "ggml-vulkan"];

    private static readonly Lock Gate = new();
    private static (string? Path, string Source)? loaded;

    /// <summary>Loads the runtime (once; a second call must ask for the same one) and describes what was loaded.</summary>
    /// <exception cref="WhisperRuntimeException">The configured libraries cannot be loaded; the message names the key.</exception>
    public static WhisperRuntimeInfo Load(string? nativeRuntimePath, bool flashAttention)
    {
        lock (Gate)
        {
            if (loaded is null)
            {
                if (string.IsNullOrWhiteSpace(nativeRuntimePath))
                {
                    LoadLibraries(PackagedDirectory, configured: false);
                    loaded = (null, "packaged");
                }
                else
                {
                    LoadLibraries(Path.GetFullPath(nativeRuntimePath), configured: true);
                    loaded = (Path.GetFullPath(nativeRuntimePath), "native");
                }

                // whisper.cpp and ggml narrate every load and job on stderr; keep their errors only.
                WhisperNative.SetLog(&OnNativeLog, IntPtr.Zero);
            }
            else if (loaded.Value.Path != (string.IsNullOrWhiteSpace(nativeRuntimePath) ? null : Path.GetFullPath(nativeRuntimePath)))
            {
                throw new WhisperRuntimeException($"{NativeRuntimeKey}: this process already runs another whisper.cpp runtime.");
            }

            var systemInfo = WhisperNative.Utf8(WhisperNative.SystemInfo())?.Trim();
            var library = MappedWhisperLibrary();
            if (loaded.Value.Path is { } directory && library is not null && !IsUnder(library, directory))
            {
                throw new WhisperRuntimeException($"{NativeRuntimeKey}: {library} was loaded instead of the library in {directory}.");
            }

            return new WhisperRuntimeInfo(loaded.Value.Source, library, systemInfo, flashAttention);
        }
    }

    /// <summary>Whisper.net.Runtime's CPU build, which the SDK copies to runtimes/&lt;rid&gt; beside the executable.</summary>
    private static string PackagedDirectory => Path.Combine(AppContext.BaseDirectory, "runtimes",
        $"linux-{RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}");

    private static void LoadLibraries(string directory, bool configured)
    {
        var key = configured ? NativeRuntimeKey : "Whisper.net.Runtime's packaged whisper.cpp";
        if (!Directory.Exists(directory))
        {
            throw new WhisperRuntimeException($"{key}: {directory} is not a directory.");
        }

        var handles = new List<(string Name, IntPtr Handle)>();
        foreach (var name in Optional.Prepend("ggml-base").Append("ggml").Append("whisper"))
        {
            var file = FindLibrary(directory, name);
            if (file is null)
            {
                if (Optional.Contains(name))
                {
                    continue;
                }

                throw new WhisperRuntimeException($"{key}: {directory} has no lib{name}.so (expected whisper.cpp's shared libraries, as deploy/build-whisper.sh installs them).");
            }

            try
            {
                handles.Add((name, NativeLibrary.Load(file)));
            }
            catch (DllNotFoundException ex)
            {
                throw new WhisperRuntimeException($"{key}: cannot load {file}: {DlError(ex)}");
            }
        }

        var whisper = handles.Single(h => h.Name == "whisper").Handle;
        // WhisperNative binds "libwhisper" by name: hand it the library loaded above (other imports resolve as usual).
        NativeLibrary.SetDllImportResolver(typeof(WhisperRuntime).Assembly, (name, _, _) =>
            name == WhisperNative.Library ? whisper : IntPtr.Zero);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnNativeLog(int level, IntPtr text, IntPtr user)
    {
        const int error = 4; // GGML_LOG_LEVEL_ERROR
        if (level == error && WhisperNative.Utf8(text) is { } line)
        {
            Console.Error.Write(line);
        }
    }

    /// <summary>lib{name}.so, Whisper.net's lib{name}-whisper.so, or a versioned lib{name}.so.N as a build installs it.</summary>
    private static string? FindLibrary(string directory, string name)
    {
        foreach (var candidate in new[] { $"lib{name}.so", $"lib{name}-whisper.so" })
        {
            var path = Path.Combine(directory, candidate);
            if (File.Exists(path))
            {
                return path;
            }
        }

        return Directory.EnumerateFiles(directory, $"lib{name}.so.*")
            .OrderBy(path => path.Length)
            .ThenBy(path => path, StringComparer.Ordinal)
            .FirstOrDefault();
    }

    private static string DlError(DllNotFoundException ex)
    {
        // .NET's message repeats the path and adds advice about DYLD/LD paths; dlerror's own words come after the last ": ".
        var message = ex.Message;
        var index = message.IndexOf(": ", StringComparison.Ordinal);
        return index >= 0 ? message[(index + 2)..].Trim() : message;
    }

    /// <summary>The libwhisper file mapped into this process (Linux): the proof of which build runs.</summary>
    private static string? MappedWhisperLibrary()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            var slash = line.IndexOf('/', StringComparison.Ordinal);
            if (slash >= 0 && Path.GetFileName(line.AsSpan(slash)).StartsWith("libwhisper", StringComparison.Ordinal))
            {
                return line[slash..];
            }
        }

        return null;
    }

    /// <summary>
    /// /proc/self/maps names the file the kernel mapped, every link resolved; the directory may hold links to it
    /// (libwhisper.so → libwhisper.so.1) or lie under a link itself, so compare real paths.
    /// </summary>
    private static bool IsUnder(string mappedFile, string directory) =>
        Directory.EnumerateFiles(directory).Any(file => RealPath(file) == mappedFile);

    private static string? RealPath(string path)
    {
        var resolved = RealPath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            NativeMemory.Free((void*)resolved); // realpath(3) mallocs the result
        }
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr RealPath(string path, IntPtr resolved);
}
