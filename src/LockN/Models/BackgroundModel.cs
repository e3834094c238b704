using LockN.Transcription;

namespace LockN.Models;

/// <summary>
/// An in-process model file loaded once, in the background, on first use or at start-up: its state for health, its
/// load error, and the loaded model for whoever awaits it. YAMNet and Silero VAD are held this way.
/// </summary>
internal sealed class BackgroundModel<T> : IDisposable
    where T : class, IDisposable
{
    private readonly Lazy<Task<T>> loading;

    /// <param name="path">The model file, or null when none was found (the model is then not offered).</param>
    public BackgroundModel(string? path, Func<string, T> load)
    {
        Path = path;
        loading = new Lazy<Task<T>>(() => Task.Run(() => load(path!)));
    }

    public string? Path { get; }

    public bool IsAvailable => Path is not null;

    public ModelState State => !IsAvailable || !loading.IsValueCreated ? ModelState.NotLoaded
        : !loading.Value.IsCompleted ? ModelState.Loading
        : loading.Value.IsCompletedSuccessfully ? ModelState.Ready : ModelState.Failed;

    public string? LastError => loading.IsValueCreated && loading.Value.IsFaulted ? loading.Value.Exception!.GetBaseException().Message : null;

    /// <summary>The model once loaded; null while it loads, failed, or is missing.</summary>
    public T? Loaded => IsAvailable && loading.IsValueCreated && loading.Value.IsCompletedSuccessfully ? loading.Value.Result : null;

    public Task<T> GetAsync() => loading.Value;

    /// <summary>Starts the load (for start-up) and reports a failure to <paramref name="failed"/> with its reason.</summary>
    public void StartLoading(Action<string> failed)
    {
        if (IsAvailable)
        {
            _ = loading.Value.ContinueWith(t => failed(t.Exception!.GetBaseException().Message), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }

    public void Dispose() => Loaded?.Dispose();
}
