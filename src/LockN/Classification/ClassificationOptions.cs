using System.ComponentModel.DataAnnotations;
using LockN.Scheduling;

namespace LockN.Classification;

/// <summary>Settings of the <c>Classification</c> configuration section (YAMNet sound events).</summary>
internal sealed record ClassificationOptions
{
    public const string Section = "Classification";

    /// <summary>The model file; relative names are searched for under the model directories.</summary>
    [Required(AllowEmptyStrings = false)]
    public string ModelFile { get; init; } = "yamnet.onnx";

    /// <summary>
    /// Load YAMNet when the server starts instead of on the first classification or stream that asks for sound
    /// events. On first use costs that request ~0.3 s; at start costs ~75 MiB of the server's memory (ONNX Runtime and
    /// the model) even where nothing is ever classified.
    /// </summary>
    public bool LoadAtStart { get; init; }

    /// <summary>
    /// Requests classified at once. Two by default: one ONNX Runtime run leaves cores idle in its serial stretches,
    /// and a second slot fills them (and overlaps one upload's decoding with another's inference): +17 % clips/s.
    /// </summary>
    [Range(1, 64)]
    public int Slots { get; init; } = 2;

    /// <summary>
    /// ONNX Runtime threads per run; 0 = cores ÷ slots, as Whisper's. Busy models share the cores by their threads
    /// (all run at <see cref="Priority"/>), so more threads here take CPU from transcription when both are busy.
    /// </summary>
    [Range(0, 256)]
    public int ThreadsPerSlot { get; init; }

    /// <summary>CPU priority of YAMNet's computation: below the front door, the same as Whisper's worker processes.</summary>
    public ModelPriority Priority { get; init; } = ModelPriority.BelowNormal;

    [Range(0, 100_000)]
    public int QueueLength { get; init; } = 32;

    [Range(0.05, 3600)]
    public double QueueTimeoutSeconds { get; init; } = 30;

    /// <summary>Largest accepted upload.</summary>
    [Range(1024, 2L * 1024 * 1024 * 1024)]
    public long MaxUploadBytes { get; init; } = 25 * 1024 * 1024;

    /// <summary>
    /// Windows scored by one ONNX Runtime call; longer inputs take several. ONNX Runtime's arena keeps the peak of the
    /// widest run for good (256 windows: +520 MB after one hour-long input; 16: +110 MB) and wider runs are no faster.
    /// </summary>
    [Range(1, 4096)]
    public int MaxWindowsPerRun { get; init; } = 16;

    /// <summary>
    /// Catch-all AudioSet labels that <c>exclude_generic=true</c> leaves out of a ranking
    /// (the list of ../shared/audio/esc50/audioset_generic_labels.txt).
    /// </summary>
    public IReadOnlyList<string> GenericLabels { get; init; } =
    [
        "Silence", "Animal", "Domestic animals, pets", "Livestock, farm animals, working animals", "Wild animals",
        "Vehicle", "Outside, rural or natural", "Outside, urban or manmade", "Inside, small room",
        "Inside, large room or hall", "Inside, public space", "Environmental noise", "Noise", "Sound effect",
    ];

    public int EffectiveThreads => ThreadsPerSlot > 0 ? ThreadsPerSlot : Math.Max(1, Environment.ProcessorCount / Slots);
}
