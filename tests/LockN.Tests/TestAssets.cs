namespace LockN.Tests;

/// <summary>Locates the read-only assets in ../shared beside the checkout (models, audio).</summary>
public static class TestAssets
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string Shared { get; } = Path.GetFullPath(
        Environment.GetEnvironmentVariable("LOCKN_SHARED") ?? Path.Combine(RepositoryRoot, "..", "shared"));

    public static string Models => Path.Combine(Shared, "models");
    public static string WhisperModels => Path.Combine(Models, "whisper");

    /// <summary>whisper.cpp built for AVX-512 as shared libraries (../shared/whisper-native/lib): Transcription:NativeRuntimePath.</summary>
    public static string WhisperNativeRuntime => Path.Combine(Shared, "whisper-native", "lib");
    public static string Speech => Path.Combine(Shared, "audio", "speech");
    public static string Esc50 => Path.Combine(Shared, "audio", "esc50");
    public static string JfkWav => Path.Combine(Speech, "jfk", "jfk.wav");
    public static string JfkMp3 => Path.Combine(Speech, "jfk", "jfk.mp3");

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LockN.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("LockN.slnx not found above " + AppContext.BaseDirectory);
    }
}
