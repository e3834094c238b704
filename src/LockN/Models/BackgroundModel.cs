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
    /// <param name="failed">Told the reason when the load fails, whether it started at start-up or on first use.</param>
    public BackgroundModel(string? path, Func<string, T> load, Action<string> failed)
    {
        Path = path;
        loading = new Lazy<Task<T>>(() =>
        {
            var task = Task.Run(() => load(path!));
            _ = task.ContinueWith(t => failed(t.Exception!.GetBaseException().Message), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            return task;
        });
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

    /// <summary>Starts the load now (at start-up) rather than on first use.</summary>
    public void StartLoading()
    {
        if (IsAvailable)
        {
            _ = loading.Value;
        }
    }

    public void Dispose() => Loaded?.Dispose();
}
