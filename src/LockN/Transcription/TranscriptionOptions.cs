using System.ComponentModel.DataAnnotations;
using LockN.Scheduling;

namespace LockN.Transcription;

/// <summary>Settings of the <c>Transcription</c> configuration section.</summary>
internal sealed record TranscriptionOptions
{
    public const string Section = "Transcription";

    /// <summary>The model <c>whisper-1</c> stands for and the one that must be loaded for /health/ready.</summary>
    [Required, RegularExpression("^whisper-.+", ErrorMessage = "must be a Whisper model id such as whisper-base.en")]
    public string DefaultModel { get; init; } = "whisper-base.en";

    /// <summary>Requests a model processes at once: lanes of its one worker process, sharing one loaded model.</summary>
    [Range(1, 64)]
    public int Slots { get; init; } = 1;

    /// <summary>CPU threads per slot; 0 shares all cores between the slots.</summary>
    [Range(0, 256)]
    public int ThreadsPerSlot { get; init; }

    /// <summary>Requests that may wait for a slot; one more is refused with 429.</summary>
    [Range(0, 100_000)]
    public int QueueLength { get; init; } = 16;

    /// <summary>How long a request may wait for a slot before it gets 503.</summary>
    [Range(0.05, 3600)]
    public double QueueTimeoutSeconds { get; init; } = 30;

    /// <summary>Largest accepted upload (OpenAI's limit is 25 MB).</summary>
    [Range(1024, 2L * 1024 * 1024 * 1024)]
    public long MaxUploadBytes { get; init; } = 25 * 1024 * 1024;

    /// <summary>
    /// Loaded workers kept beyond the slots. A spare costs a whole model load in memory; what it buys is that when a
    /// worker must be killed (a job that ignores cancellation, a crash) its slot is served again at once instead of
    /// after a model load (about a second on CPU for base.en, more for large models).
    /// </summary>
    [Range(0, 8)]
    public int SpareWorkers { get; init; }

    /// <summary>whisper.cpp's flash attention: 1.3–2× faster on CPU and GPU, same transcripts. Off only to compare.</summary>
    public bool FlashAttention { get; init; } = true;

    /// <summary>
    /// A directory of whisper.cpp shared libraries (libwhisper.so, libggml*.so) built for this machine, e.g. by
    /// deploy/build-whisper.sh; empty for Whisper.net's packaged (AVX2) runtime. A path that does not load stops
    /// start-up: LockN never falls back to the packaged runtime silently.
    /// </summary>
    public string? NativeRuntimePath { get; init; }

    /// <summary>
    /// Scheduling priority of the worker processes. BelowNormal keeps the front door (admission, cancellation, health)
    /// responsive when models saturate every core; Normal suits a host dedicated to transcription.
    /// </summary>
    public ModelPriority WorkerPriority { get; init; } = ModelPriority.BelowNormal;

    /// <summary>
    /// How long a cancelled job may take to stop by itself before its worker is killed. whisper.cpp stops only
    /// between 30 s windows (hundreds of ms on CPU), so on CPU the kill nearly always wins; on a GPU, where windows
    /// take tens of ms and reloading a large model costs seconds, a larger grace keeps the warm worker.
    /// </summary>
    [Range(0, 10_000)]
    public int CancelGraceMilliseconds { get; init; } = 10;

    /// <summary>Run a short silent job when a worker starts, so the first request is not slow.</summary>
    public bool WarmUp { get; init; } = true;

    /// <summary>Download the default model at start-up when it is missing (real weights from the whisper.cpp location).</summary>
    public bool PullDefaultModel { get; init; } = true;

    public WhisperEngineSettings Engine => new(NativeRuntimePath, FlashAttention);

    public int EffectiveThreads => ThreadsPerSlot > 0 ? ThreadsPerSlot : Math.Max(1, Environment.ProcessorCount / Slots);
}

/// <summary>How a process runs whisper.cpp: which runtime, with which options. The same for workers, the CLI and the bench.</summary>
internal sealed record WhisperEngineSettings(string? NativeRuntimePath, bool FlashAttention)
{
    public static WhisperEngineSettings Packaged { get; } = new(null, true);
}
