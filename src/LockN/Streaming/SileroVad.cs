using Microsoft.ML.OnnxRuntime;

namespace LockN.Streaming;

/// <summary>
/// Silero VAD on ONNX Runtime: one session for the whole server (runs are thread-safe); each stream keeps its own
/// recurrent state in a <see cref="VoiceActivityDetector"/>.
/// </summary>
internal sealed class SileroVadModel : IDisposable
{
    public const int SampleRate = 16_000;
    public const int ChunkSamples = 512;   // 32 ms, the chunk the model is trained on at 16 kHz
    public const int ContextSamples = 64;  // the tail of the previous chunk, prefixed to each input

    private readonly InferenceSession session;

    public SileroVadModel(string path)
    {
        // One thread per run: a run is ~0.1 ms, far below the cost of waking a thread pool.
        using var options = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        session = new InferenceSession(path, options);
        Path = path;
        foreach (var name in new[] { "input", "state", "sr" })
        {
            if (!session.InputMetadata.ContainsKey(name))
            {
                throw new InvalidDataException($"{path} is not a Silero VAD v5/v6 model: it has no '{name}' input.");
            }
        }
    }

    public string Path { get; }

    internal InferenceSession Session => session;

    public void Dispose() => session.Dispose();
}

/// <summary>A change of speech state, at 16 kHz sample positions from the start of the stream.</summary>
internal readonly record struct VadTransition(bool SpeechStarted, long Position);

/// <summary>
/// One stream's voice activity: feeds 32 ms chunks to Silero with the stream's recurrent state and turns the
/// speech probabilities into started/stopped transitions with hysteresis (speech continues while the probability
/// stays above threshold − 0.15), a minimum speech length and a silence duration that ends an utterance.
/// Runs without allocating per chunk: the tensors are bound once to buffers this object owns.
/// </summary>
internal sealed class VoiceActivityDetector : IDisposable
{
    private const int StateLength = 2 * 1 * 128;

    private readonly InferenceSession session;
    private readonly float[] input = new float[SileroVadModel.ContextSamples + SileroVadModel.ChunkSamples];
    private readonly float[] state = new float[StateLength];
    private readonly float[] nextState = new float[StateLength];
    private readonly long[] sampleRate = [SileroVadModel.SampleRate];
    private readonly float[] probability = new float[1];
    private readonly OrtValue[] inputs;
    private readonly OrtValue[] outputs;
    private readonly RunOptions runOptions = new();
    private readonly string[] inputNames = ["input", "state", "sr"];
    private readonly string[] outputNames = ["output", "stateN"];
    private readonly List<VadTransition> transitions = [];

    private int filled;
    private long chunkStart;
    private long candidateStart = -1;
    private bool inSpeech;
    private long lastSpeechEnd;

    public VoiceActivityDetector(SileroVadModel model, TurnDetection settings)
    {
        session = model.Session;
        Settings = settings;
        inputs =
        [
            OrtValue.CreateTensorValueFromMemory(input, [1, input.Length]),
            OrtValue.CreateTensorValueFromMemory(state, [2, 1, 128]),
            OrtValue.CreateTensorValueFromMemory(sampleRate, []),
        ];
        outputs =
        [
            OrtValue.CreateTensorValueFromMemory(probability, [1, 1]),
            OrtValue.CreateTensorValueFromMemory(nextState, [2, 1, 128]),
        ];
    }

    public TurnDetection Settings { get; set; }

    public bool InSpeech => inSpeech;

    /// <summary>The speech probability of the latest chunk.</summary>
    public float LastProbability { get; private set; }

    /// <summary>
    /// Adds 16 kHz samples that follow the previous ones and returns the transitions they complete (valid until the
    /// next call). A stopped transition's position is the end of the last chunk heard as speech.
    /// </summary>
    public IReadOnlyList<VadTransition> Process(ReadOnlySpan<float> samples)
    {
        transitions.Clear();
        while (!samples.IsEmpty)
        {
            var take = Math.Min(SileroVadModel.ChunkSamples - filled, samples.Length);
            samples[..take].CopyTo(input.AsSpan(SileroVadModel.ContextSamples + filled));
            filled += take;
            samples = samples[take..];
            if (filled == SileroVadModel.ChunkSamples)
            {
                RunChunk();
                filled = 0;
            }
        }

        return transitions;
    }

    /// <summary>Ends speech now (the stream is closing or the utterance was committed); returns the stop, if any.</summary>
    public VadTransition? ForceStop(long position)
    {
        candidateStart = -1;
        if (!inSpeech)
        {
            return null;
        }

        inSpeech = false;
        return new VadTransition(false, Math.Max(lastSpeechEnd, Math.Min(position, chunkStart + filled)));
    }

    private void RunChunk()
    {
        session.Run(runOptions, inputNames, inputs, outputNames, outputs);
        nextState.CopyTo(state, 0);
        input.AsSpan(input.Length - SileroVadModel.ContextSamples).CopyTo(input);
        var p = probability[0];
        LastProbability = p;
        var start = chunkStart;
        var end = chunkStart + SileroVadModel.ChunkSamples;
        chunkStart = end;

        var threshold = Settings.Threshold;
        var continuation = Math.Max(0.01, threshold - 0.15);
        var minSpeech = Settings.MinSpeechDurationMs * SileroVadModel.SampleRate / 1000;
        var silence = Settings.SilenceDurationMs * SileroVadModel.SampleRate / 1000;
        if (!inSpeech)
        {
            if (candidateStart < 0)
            {
                if (p >= threshold)
                {
                    candidateStart = start;
                    lastSpeechEnd = end;
                }
            }
            else if (p >= continuation)
            {
                lastSpeechEnd = end;
            }
            else
            {
                candidateStart = -1;
            }

            if (candidateStart >= 0 && lastSpeechEnd - candidateStart >= Math.Max(minSpeech, SileroVadModel.ChunkSamples))
            {
                inSpeech = true;
                transitions.Add(new VadTransition(true, candidateStart));
                candidateStart = -1;
            }

            return;
        }

        if (p >= continuation)
        {
            lastSpeechEnd = end;
        }
        else if (end - lastSpeechEnd >= silence)
        {
            inSpeech = false;
            transitions.Add(new VadTransition(false, lastSpeechEnd));
        }
    }

    public void Dispose()
    {
        foreach (var value in inputs.Concat(outputs))
        {
            value.Dispose();
        }

        runOptions.Dispose();
    }
}
