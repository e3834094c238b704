using System.Runtime.InteropServices;

namespace LockN.Transcription.Native;

/// <summary>
/// whisper.cpp's C API (include/whisper.h), the part LockN calls. Written by hand rather than through Whisper.net's
/// processor because that builds a new <c>whisper_state</c> (KV caches and ~100 MB of compute buffers, allocated and
/// page-faulted afresh) for every request; whisper-server keeps one, and so does LockN (see <see cref="WhisperRunner"/>).
/// The structs follow whisper.h at the pinned commit (deploy/build-whisper.sh), which Whisper.net 1.9.1's packaged
/// v1.8.5 build shares: the header only gained functions between the two.
/// "libwhisper" resolves to the library <see cref="WhisperRuntime"/> loaded by full path.
/// </summary>
internal static unsafe partial class WhisperNative
{
    public const string Library = "libwhisper";

    public enum SamplingStrategy
    {
        Greedy = 0,
        BeamSearch = 1,
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ContextParams
    {
        public byte UseGpu;
        public byte FlashAttention;
        public int GpuDevice;
        public byte DtwTokenTimestamps;
        public int DtwAlignmentHeadsPreset;
        public int DtwNTop;
        public nuint DtwAlignmentHeadCount;
        public IntPtr DtwAlignmentHeads;
        public nuint DtwMemorySize;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct VadParams
    {
        public float Threshold;
        public int MinSpeechDurationMs;
        public int MinSilenceDurationMs;
        public float MaxSpeechDurationSeconds;
        public int SpeechPadMs;
        public float SamplesOverlap;
    }

    /// <summary>whisper_full_params, field by field (bool is one byte).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct FullParams
    {
        public SamplingStrategy Strategy;
        public int Threads;
        public int MaxTextContext;
        public int OffsetMs;
        public int DurationMs;
        public byte Translate;
        public byte NoContext;
        public byte NoTimestamps;
        public byte SingleSegment;
        public byte PrintSpecial;
        public byte PrintProgress;
        public byte PrintRealtime;
        public byte PrintTimestamps;
        public byte TokenTimestamps;
        public float TimestampProbabilityThreshold;
        public float TimestampProbabilitySumThreshold;
        public int MaxLength;
        public byte SplitOnWord;
        public int MaxTokens;
        public byte DebugMode;
        public int AudioContext;
        public byte TinyDiarize;
        public IntPtr SuppressRegex;
        public IntPtr InitialPrompt;
        public byte CarryInitialPrompt;
        public IntPtr PromptTokens;
        public int PromptTokenCount;
        public IntPtr Language;
        public byte DetectLanguage;
        public byte SuppressBlank;
        public byte SuppressNonSpeechTokens;
        public float Temperature;
        public float MaxInitialTimestamp;
        public float LengthPenalty;
        public float TemperatureIncrement;
        public float EntropyThreshold;
        public float LogProbabilityThreshold;
        public float NoSpeechThreshold;
        public int GreedyBestOf;
        public int BeamSize;
        public float BeamPatience;
        public IntPtr NewSegmentCallback;
        public IntPtr NewSegmentCallbackUserData;
        public delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int, IntPtr, void> ProgressCallback;
        public IntPtr ProgressCallbackUserData;
        public delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr, byte> EncoderBeginCallback;
        public IntPtr EncoderBeginCallbackUserData;
        public delegate* unmanaged[Cdecl]<IntPtr, byte> AbortCallback;
        public IntPtr AbortCallbackUserData;
        public IntPtr LogitsFilterCallback;
        public IntPtr LogitsFilterCallbackUserData;
        public IntPtr GrammarRules;
        public nuint GrammarRuleCount;
        public nuint GrammarStartRule;
        public float GrammarPenalty;
        public byte Vad;
        public IntPtr VadModelPath;
        public VadParams VadParameters;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct TokenData
    {
        public int Id;
        public int TimestampId;
        public float Probability;
        public float LogProbability;
        public float TimestampProbability;
        public float TimestampProbabilitySum;
        public long Start;
        public long End;
        public long DtwTime;
        public float VoiceLength;
    }

    [LibraryImport(Library, EntryPoint = "whisper_context_default_params_by_ref")]
    public static partial ContextParams* ContextDefaultParams();

    [LibraryImport(Library, EntryPoint = "whisper_init_from_file_with_params_no_state", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr InitFromFile(string path, ContextParams parameters);

    [LibraryImport(Library, EntryPoint = "whisper_free")]
    public static partial void Free(IntPtr context);

    [LibraryImport(Library, EntryPoint = "whisper_init_state")]
    public static partial IntPtr InitState(IntPtr context);

    [LibraryImport(Library, EntryPoint = "whisper_free_state")]
    public static partial void FreeState(IntPtr state);

    [LibraryImport(Library, EntryPoint = "whisper_full_default_params_by_ref")]
    public static partial FullParams* FullDefaultParams(SamplingStrategy strategy);

    [LibraryImport(Library, EntryPoint = "whisper_free_params")]
    public static partial void FreeParams(FullParams* parameters);

    [LibraryImport(Library, EntryPoint = "whisper_full_with_state")]
    public static partial int FullWithState(IntPtr context, IntPtr state, FullParams parameters, float* samples, int sampleCount);

    [LibraryImport(Library, EntryPoint = "whisper_full_n_segments_from_state")]
    public static partial int SegmentCount(IntPtr state);

    [LibraryImport(Library, EntryPoint = "whisper_full_get_segment_t0_from_state")]
    public static partial long SegmentStart(IntPtr state, int segment);

    [LibraryImport(Library, EntryPoint = "whisper_full_get_segment_t1_from_state")]
    public static partial long SegmentEnd(IntPtr state, int segment);

    [LibraryImport(Library, EntryPoint = "whisper_full_get_segment_text_from_state")]
    public static partial IntPtr SegmentText(IntPtr state, int segment);

    [LibraryImport(Library, EntryPoint = "whisper_full_get_segment_no_speech_prob_from_state")]
    public static partial float SegmentNoSpeechProbability(IntPtr state, int segment);

    [LibraryImport(Library, EntryPoint = "whisper_full_n_tokens_from_state")]
    public static partial int TokenCount(IntPtr state, int segment);

    [LibraryImport(Library, EntryPoint = "whisper_full_get_token_text_from_state")]
    public static partial IntPtr TokenText(IntPtr context, IntPtr state, int segment, int token);

    [LibraryImport(Library, EntryPoint = "whisper_full_get_token_data_from_state")]
    public static partial TokenData TokenDataOf(IntPtr state, int segment, int token);

    [LibraryImport(Library, EntryPoint = "whisper_full_lang_id_from_state")]
    public static partial int LanguageId(IntPtr state);

    [LibraryImport(Library, EntryPoint = "whisper_lang_str")]
    public static partial IntPtr LanguageCode(int id);

    [LibraryImport(Library, EntryPoint = "whisper_is_multilingual")]
    public static partial int IsMultilingual(IntPtr context);

    [LibraryImport(Library, EntryPoint = "whisper_token_eot")]
    public static partial int EndOfTextToken(IntPtr context);

    [LibraryImport(Library, EntryPoint = "whisper_print_system_info")]
    public static partial IntPtr SystemInfo();

    [LibraryImport(Library, EntryPoint = "whisper_log_set")]
    public static partial void SetLog(delegate* unmanaged[Cdecl]<int, IntPtr, IntPtr, void> callback, IntPtr userData);

    public static string? Utf8(IntPtr text) => text == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(text);
}
