using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using LockN.Audio;
using LockN.Transcription.Native;

namespace LockN.Transcription;

/// <summary>
/// whisper.cpp in this process: one loaded model, and one <c>whisper_state</c> per lane, built once and reused by
/// every job on that lane, as whisper-server does (building a state allocates and page-faults ~100 MB of buffers:
/// tens of ms a request). Lanes run side by side on the one model; each runs one job at a time. The worker process
/// (a lane per slot), the CLI and the benchmark's baseline all transcribe through this class.
/// </summary>
internal sealed class WhisperRunner : IDisposable
{
    // whisper.cpp ignores input shorter than 1 s; pad short clips with silence so they are still transcribed.
    private const int MinimumSamples = 16000 + 1600;

    private readonly IntPtr context;
    private readonly IntPtr[] states;
    private readonly SemaphoreSlim[] oneJobPerLane;
    private readonly int threads;
    private readonly int endOfText;

    public unsafe WhisperRunner(string modelPath, int threads, WhisperEngineSettings engine, int lanes = 1)
    {
        Runtime = WhisperRuntime.Load(engine.NativeRuntimePath, engine.FlashAttention);
        var parameters = *WhisperNative.ContextDefaultParams();
        parameters.FlashAttention = engine.FlashAttention ? (byte)1 : (byte)0;
        context = WhisperNative.InitFromFile(modelPath, parameters);
        if (context == IntPtr.Zero)
        {
            throw new InvalidDataException($"whisper.cpp could not load the model {Path.GetFileName(modelPath)} (not a GGML Whisper model, or a version it does not read).");
        }

        states = new IntPtr[Math.Max(1, lanes)];
        for (var lane = 0; lane < states.Length; lane++)
        {
            states[lane] = WhisperNative.InitState(context);
            if (states[lane] == IntPtr.Zero)
            {
                Dispose();
                throw new InsufficientMemoryException("whisper.cpp could not allocate its working state for the model.");
            }
        }

        oneJobPerLane = [.. states.Select(_ => new SemaphoreSlim(1, 1))];

        this.threads = Math.Max(1, threads);
        endOfText = WhisperNative.EndOfTextToken(context);
        IsEnglishOnly = WhisperNative.IsMultilingual(context) == 0;
    }

    public bool IsEnglishOnly { get; }

    public int Lanes => states.Length;

    /// <summary>How many times a lane's state was rebuilt after a long job (see <see cref="RenewStateAsync"/>).</summary>
    public int StatesRenewed { get; private set; }

    public WhisperRuntimeInfo Runtime { get; }

    /// <summary>Runs one short silent job so the first real request does not pay for native warm-up.</summary>
    public async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        await foreach (var _ in RunAsync(new float[MinimumSamples], new WhisperJob { Language = "en" }, null, cancellationToken))
        {
        }
    }

    /// <summary>
    /// Transcribes <paramref name="samples"/> (16 kHz mono), yielding segments as whisper.cpp finishes them. Cancellation
    /// reaches whisper.cpp's abort callback, which it checks between encoder and decoder passes (not during the first
    /// spectrogram of the whole input): hundreds of ms on a CPU, which is why the server kills a worker that lingers.
    /// </summary>
    public IAsyncEnumerable<TranscriptSegment> RunAsync(ReadOnlyMemory<float> samples, WhisperJob job, Action<int>? onProgress, CancellationToken cancellationToken) =>
        RunAsync(0, samples, job, onProgress, cancellationToken);

    /// <inheritdoc cref="RunAsync(ReadOnlyMemory{float}, WhisperJob, Action{int}?, CancellationToken)"/>
    public async IAsyncEnumerable<TranscriptSegment> RunAsync(
        int lane,
        ReadOnlyMemory<float> samples,
        WhisperJob job,
        Action<int>? onProgress,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (samples.Length < MinimumSamples)
        {
            var padded = new float[MinimumSamples];
            samples.CopyTo(padded);
            samples = padded;
        }

        var oneJob = oneJobPerLane[lane];
        await oneJob.WaitAsync(cancellationToken);
        if (states[lane] == IntPtr.Zero && (states[lane] = WhisperNative.InitState(context)) == IntPtr.Zero)
        {
            oneJob.Release(); // a renewal that failed for want of memory: try again, and fail this job if it still cannot
            throw new InsufficientMemoryException("whisper.cpp could not allocate its working state for the model.");
        }

        var native = new NativeJob(this, states[lane], job, onProgress);
        Task<int> running;
        try
        {
            running = Task.Factory.StartNew(() => native.Run(samples), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        catch
        {
            native.Dispose();
            oneJob.Release();
            throw;
        }

        try
        {
            using (cancellationToken.UnsafeRegister(static j => ((NativeJob)j!).Abort(), native))
            {
                _ = running.ContinueWith(static (_, j) => ((NativeJob)j!).Segments.Writer.TryComplete(), native, TaskScheduler.Default);
                await foreach (var segment in native.Segments.Reader.ReadAllAsync(CancellationToken.None))
                {
                    yield return segment;
                }

                var result = await running;
                cancellationToken.ThrowIfCancellationRequested();
                if (result != 0)
                {
                    throw new InvalidOperationException($"whisper.cpp failed to transcribe (code {result}).");
                }
            }
        }
        finally
        {
            // The state is reused: never release it while whisper.cpp may still be running on it.
            native.Abort();
            await running.ContinueWith(static _ => { }, TaskScheduler.Default);
            native.Dispose();
            oneJob.Release();
        }
    }

    /// <summary>
    /// Replaces a lane's state with a fresh one. A state keeps what its largest input needed (a five-minute piece's
    /// spectrogram and segments: ~30 MB that a short request never uses again) for as long as it lives, so after a
    /// long job the lane starts over; the next job pays the tens of ms a new state costs.
    /// </summary>
    private async Task RenewStateAsync(int lane)
    {
        await oneJobPerLane[lane].WaitAsync(CancellationToken.None);
        try
        {
            WhisperNative.FreeState(states[lane]);
            states[lane] = WhisperNative.InitState(context);
            StatesRenewed++;
            if (states[lane] == IntPtr.Zero)
            {
                throw new InsufficientMemoryException("whisper.cpp could not allocate its working state for the model.");
            }
        }
        finally
        {
            oneJobPerLane[lane].Release();
        }
    }

    /// <summary>Audio transcribed in one whisper.cpp call at most: five minutes (19 MB of samples, a 10 MB spectrogram).</summary>
    public const int PieceSamples = 16_000 * 300;

    /// <summary>One whisper.cpp call over a piece of audio, as <see cref="RunInPiecesAsync"/> makes them.</summary>
    internal delegate IAsyncEnumerable<TranscriptSegment> PieceTranscriber(ReadOnlyMemory<float> piece, WhisperJob job, CancellationToken cancellationToken);

    /// <summary>Transcribes audio of any length in bounded memory: see <see cref="RunInPiecesAsync"/>.</summary>
    public async IAsyncEnumerable<TranscriptSegment> RunAsync(int lane, DecodedSamples samples, WhisperJob job, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (samples.Length > PieceSamples)
        {
            try
            {
                await foreach (var segment in RunInPiecesAsync(samples, job, PieceSamples, (piece, pieceJob, token) => RunAsync(lane, piece, pieceJob, null, token), cancellationToken))
                {
                    yield return segment;
                }
            }
            finally
            {
                await RenewStateAsync(lane);
            }

            yield break;
        }

        using var whole = samples.OpenMemory();
        await foreach (var segment in RunAsync(lane, whole.Memory, job, null, cancellationToken))
        {
            yield return segment;
        }
    }

    /// <summary>
    /// whisper.cpp takes the whole signal at once and computes its spectrogram for all of it (an hour: 230 MB of
    /// samples plus 115 MB), so long audio is read and transcribed a piece at a time. Each piece's last segment is held
    /// back, as it may be cut at the piece's edge, and the next piece starts where it began (never less than a tenth
    /// of a piece on), with the text before it as the prompt, as whisper.cpp conditions each window on the one before.
    /// Times count from the start of the whole audio and ids run on across pieces.
    /// </summary>
    internal static async IAsyncEnumerable<TranscriptSegment> RunInPiecesAsync(
        DecodedSamples samples, WhisperJob job, int pieceSamples, PieceTranscriber transcribe, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var piece = new float[Math.Min(pieceSamples, samples.Length)];
        var nextId = 0;
        string? previousText = null;
        for (var start = 0; start < samples.Length;)
        {
            var count = samples.CopyTo(start, piece);
            var isLast = start + count >= samples.Length;
            var offset = start / 16_000.0;
            var pieceJob = previousText is null ? job : job with { Prompt = previousText };
            TranscriptSegment? held = null;
            await foreach (var segment in transcribe(piece.AsMemory(0, count), pieceJob, cancellationToken))
            {
                if (held is not null)
                {
                    previousText = held.Text;
                    yield return Shifted(held, offset, nextId++);
                }

                held = segment;
            }

            var advance = held is null ? count : (int)Math.Round(held.Start * 16_000);
            if (held is not null && (isLast || advance < pieceSamples / 10))
            {
                previousText = held.Text;
                yield return Shifted(held, offset, nextId++);
                advance = count;
            }

            start += advance;
        }
    }

    private static TranscriptSegment Shifted(TranscriptSegment segment, double seconds, int id) => segment with
    {
        Id = id,
        Start = segment.Start + seconds,
        End = segment.End + seconds,
        Words = [.. segment.Words.Select(w => w with { Start = w.Start + seconds, End = w.End + seconds })],
    };

    /// <summary>One whisper_full_with_state call: its parameters, native strings and callbacks' target.</summary>
    private sealed unsafe class NativeJob : IDisposable
    {
        private readonly WhisperRunner runner;
        private readonly IntPtr state;
        private readonly WhisperJob job;
        private readonly Action<int>? onProgress;
        private readonly IntPtr language;
        private readonly IntPtr prompt;
        private GCHandle self;
        private int aborted;
        private int emitted;

        public NativeJob(WhisperRunner runner, IntPtr state, WhisperJob job, Action<int>? onProgress)
        {
            this.runner = runner;
            this.state = state;
            this.job = job;
            this.onProgress = onProgress;
            language = Marshal.StringToCoTaskMemUTF8(runner.IsEnglishOnly ? "en" : job.Language ?? "auto");
            prompt = string.IsNullOrWhiteSpace(job.Prompt) ? IntPtr.Zero : Marshal.StringToCoTaskMemUTF8(job.Prompt);
            self = GCHandle.Alloc(this);
        }

        public Channel<TranscriptSegment> Segments { get; } = Channel.CreateUnbounded<TranscriptSegment>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });

        public void Abort() => Volatile.Write(ref aborted, 1);

        public int Run(ReadOnlyMemory<float> samples)
        {
            var defaults = WhisperNative.FullDefaultParams(WhisperNative.SamplingStrategy.Greedy);
            var parameters = *defaults;
            WhisperNative.FreeParams(defaults);
            parameters.Threads = job.Threads is > 0 ? Math.Min(job.Threads, runner.threads) : runner.threads;
            parameters.Translate = job.Translate ? (byte)1 : (byte)0;
            parameters.Language = language;
            parameters.DetectLanguage = 0;
            parameters.InitialPrompt = prompt;
            parameters.Temperature = job.Temperature;
            parameters.TokenTimestamps = job.WordTimestamps ? (byte)1 : (byte)0;
            parameters.PrintProgress = 0;
            parameters.PrintRealtime = 0;
            parameters.PrintTimestamps = 0;
            var user = GCHandle.ToIntPtr(self);
            parameters.NewSegmentCallback = (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int, IntPtr, void>)&OnNewSegments;
            parameters.NewSegmentCallbackUserData = user;
            parameters.EncoderBeginCallback = &OnEncoderBegin;
            parameters.EncoderBeginCallbackUserData = user;
            parameters.AbortCallback = &OnAbortCheck;
            parameters.AbortCallbackUserData = user;
            if (onProgress is not null)
            {
                parameters.ProgressCallback = &OnProgress;
                parameters.ProgressCallbackUserData = user;
            }

            using var pin = samples.Pin();
            return WhisperNative.FullWithState(runner.context, state, parameters, (float*)pin.Pointer, samples.Length);
        }

        private static NativeJob From(IntPtr user) => (NativeJob)GCHandle.FromIntPtr(user).Target!;

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static byte OnAbortCheck(IntPtr user) => Volatile.Read(ref From(user).aborted) != 0 ? (byte)1 : (byte)0;

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static byte OnEncoderBegin(IntPtr context, IntPtr state, IntPtr user) => Volatile.Read(ref From(user).aborted) != 0 ? (byte)0 : (byte)1;

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static void OnProgress(IntPtr context, IntPtr state, int percent, IntPtr user) => From(user).onProgress?.Invoke(percent);

        [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
        private static void OnNewSegments(IntPtr context, IntPtr state, int count, IntPtr user)
        {
            var job = From(user);
            var total = WhisperNative.SegmentCount(state);
            for (var i = Math.Max(job.emitted, total - count); i < total; i++)
            {
                job.Segments.Writer.TryWrite(job.runner.ReadSegment(state, i, job.job.WordTimestamps));
            }

            job.emitted = total;
        }

        public void Dispose()
        {
            Marshal.FreeCoTaskMem(language);
            if (prompt != IntPtr.Zero)
            {
                Marshal.FreeCoTaskMem(prompt);
            }

            if (self.IsAllocated)
            {
                self.Free();
            }
        }
    }

    private TranscriptSegment ReadSegment(IntPtr state, int index, bool withWords)
    {
        var tokens = new List<(int Id, string Text, float Probability, float LogProbability, long Start, long End)>();
        var count = WhisperNative.TokenCount(state, index);
        for (var t = 0; t < count; t++)
        {
            var data = WhisperNative.TokenDataOf(state, index, t);
            // Special tokens ([_BEG_], timestamps, <|endoftext|>) carry timing or control, not text.
            if (data.Id >= endOfText)
            {
                continue;
            }

            tokens.Add((data.Id, WhisperNative.Utf8(WhisperNative.TokenText(context, state, index, t)) ?? "", data.Probability, data.LogProbability, data.Start, data.End));
        }

        var avgLogprob = tokens.Count == 0 ? 0f : tokens.Average(t => t.LogProbability);
        return new TranscriptSegment(
            index,
            Math.Round(WhisperNative.SegmentStart(state, index) / 100.0, 2),
            Math.Round(WhisperNative.SegmentEnd(state, index) / 100.0, 2),
            WhisperNative.Utf8(WhisperNative.SegmentText(state, index)) ?? "",
            [.. tokens.Select(t => t.Id)],
            avgLogprob,
            WhisperNative.SegmentNoSpeechProbability(state, index),
            WhisperNative.Utf8(WhisperNative.LanguageCode(WhisperNative.LanguageId(state))),
            withWords ? ToWords(tokens.Select(t => new WordPiece(t.Text, t.Probability, t.Start, t.End))) : []);
    }

    private readonly record struct WordPiece(string Text, float Probability, long Start, long End);

    /// <summary>Joins sub-word tokens into words: a token that starts with a space starts a new word.</summary>
    private static List<TranscriptWord> ToWords(IEnumerable<WordPiece> tokens)
    {
        var words = new List<TranscriptWord>();
        var text = new System.Text.StringBuilder();
        long start = 0, end = 0;
        float probabilitySum = 0;
        var count = 0;

        void Flush()
        {
            var word = text.ToString().Trim();
            if (word.Length > 0)
            {
                words.Add(new TranscriptWord(word, start / 100.0, end / 100.0, probabilitySum / count));
            }

            text.Clear();
            probabilitySum = 0;
            count = 0;
        }

        foreach (var token in tokens)
        {
            if (count > 0 && token.Text is not null && token.Text.StartsWith(' '))
            {
                Flush();
            }

            if (count == 0)
            {
                start = token.Start;
            }

            text.Append(token.Text);
            end = token.End;
            probabilitySum += token.Probability;
            count++;
        }

        Flush();
        return words;
    }

    public void Dispose()
    {
        foreach (var state in states.Where(s => s != IntPtr.Zero))
        {
            WhisperNative.FreeState(state);
        }

        WhisperNative.Free(context);
        foreach (var gate in oneJobPerLane ?? [])
        {
            gate.Dispose();
        }
    }
}
