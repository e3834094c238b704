using System.Buffers;
using LockN.Audio;
using LockN.Scheduling;
using Microsoft.ML.OnnxRuntime;

namespace LockN.Classification;

/// <summary>Receives one window's class scores; the span is valid during the call only.</summary>
internal delegate void WindowScores(int window, ReadOnlySpan<float> scores);

/// <summary>One AudioSet class of YAMNet's class map.</summary>
internal sealed record SoundClass(int Index, string Mid, string Name);

/// <summary>
/// YAMNet on ONNX Runtime: one shared, thread-safe InferenceSession, the class map read from the CSV beside the
/// model, and YAMNet's own framing (0.975 s windows every 0.48 s, the tail zero-padded).
/// </summary>
internal sealed class YamnetModel : IDisposable
{
    public const string Id = "yamnet";
    public const int WindowSamples = 15_600;
    public const int HopSamples = 7_680;
    public const double WindowSeconds = WindowSamples / 16_000.0;
    public const double HopSeconds = HopSamples / 16_000.0;

    private readonly InferenceSession session;
    private readonly int maxWindowsPerRun;
    private readonly ModelThreads computeThreads;
    private readonly CoreShares? coreShares;
    private readonly int threads;
    private readonly int concurrency;

    /// <param name="threads">ONNX Runtime threads per run (the calling thread included).</param>
    /// <param name="concurrency">Runs at once: one compute thread each (the model's slots).</param>
    /// <param name="priority">The compute threads' CPU priority, and so that of ONNX Runtime's threads.</param>
    /// <param name="coreShares">Fewer runs at once while other models compute; null to run <paramref name="concurrency"/> always.</param>
    public YamnetModel(string path, int threads, int maxWindowsPerRun = 16, int concurrency = 1, ModelPriority priority = ModelPriority.Normal, CoreShares? coreShares = null)
    {
        this.threads = threads;
        this.concurrency = concurrency;
        this.coreShares = coreShares;
        var classMap = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path)!, "yamnet_class_map.csv");
        if (!File.Exists(classMap))
        {
            throw new FileNotFoundException($"YAMNet's class map must lie beside the model: {classMap} is missing.", classMap);
        }

        Classes = ReadClassMap(classMap);
        using var options = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        // ONNX Runtime's workers spin after each run by default; in a server that shares its cores with HTTP, decoding
        // and Whisper, that spinning takes CPU from the work that feeds the next run.
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        // ONNX Runtime's CPU arena keeps, for good, what its widest concurrent runs needed; without it each run's
        // buffers go back when it ends (and malloc_trim returns them to the system after a long request).
        options.EnableCpuMemArena = false;
        computeThreads = new ModelThreads("YAMNet", concurrency, priority);

        // Created on a compute thread: the threads ONNX Runtime starts for the session inherit its priority.
        session = computeThreads.RunAsync(() => new InferenceSession(path, options), CancellationToken.None).GetAwaiter().GetResult();
        Path = path;
        this.maxWindowsPerRun = maxWindowsPerRun;
        if (session.OutputMetadata["scores"].Dimensions[^1] != Classes.Count)
        {
            throw new InvalidDataException($"{path} scores {session.OutputMetadata["scores"].Dimensions[^1]} classes but its class map lists {Classes.Count}.");
        }
    }

    public string Path { get; }

    public IReadOnlyList<SoundClass> Classes { get; }

    /// <summary>Number of windows YAMNet frames <paramref name="samples"/> into (at least one).</summary>
    public static int WindowCount(long samples) =>
        samples <= WindowSamples ? 1 : 1 + (int)Math.Ceiling((samples - WindowSamples) / (double)HopSamples);

    /// <summary>
    /// Runs <paramref name="compute"/> (a call of <c>Score</c>, with what goes with it) on one of the model's compute
    /// threads, at the model's priority, within the model's share of the cores. Callers hold one of the model's slots,
    /// so a thread is always free.
    /// </summary>
    public Task<T> ComputeAsync<T>(Func<T> compute, CancellationToken cancellationToken) => computeThreads.RunAsync(
        () =>
        {
            using var computing = coreShares?.EnterComputation(Id, threads, concurrency, cancellationToken);
            return compute();
        },
        cancellationToken);

    /// <summary>Scores every window: result[window][class], sigmoid outputs in [0, 1].</summary>
    public float[][] Score(float[] samples, CancellationToken cancellationToken)
    {
        var scores = new float[WindowCount(samples.Length)][];
        using var source = DecodedSamples.InMemory(samples);
        Score(source, (window, windowScores) => scores[window] = windowScores.ToArray(), cancellationToken);
        return scores;
    }

    /// <summary>
    /// Scores every window in order, handing each window's class scores to <paramref name="onWindow"/> (valid during the
    /// call only). Reads and scores <see cref="maxWindowsPerRun"/> windows at a time, so memory is the same for a
    /// second of audio as for an hour of it.
    /// </summary>
    public void Score(DecodedSamples samples, WindowScores onWindow, CancellationToken cancellationToken)
    {
        var windows = WindowCount(samples.Length);
        using var runOptions = new RunOptions();
        using var cancel = cancellationToken.Register(() => runOptions.Terminate = true);

        // Rented: a 5 s clip's windows are 600 KB, which would otherwise be a large-object allocation per request.
        var largestBatch = Math.Min(maxWindowsPerRun, windows);
        var span = ArrayPool<float>.Shared.Rent(((largestBatch - 1) * HopSamples) + WindowSamples);
        var input = ArrayPool<float>.Shared.Rent(largestBatch * WindowSamples);
        try
        {
            for (var first = 0; first < windows; first += maxWindowsPerRun)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var batch = Math.Min(maxWindowsPerRun, windows - first);

                // One read for the batch's stretch of audio (windows overlap by half), then framed into the tensor.
                var stretch = span.AsSpan(0, ((batch - 1) * HopSamples) + WindowSamples);
                var read = samples.CopyTo((long)first * HopSamples, stretch);
                stretch[read..].Clear(); // the zero padding of a last, short window
                for (var w = 0; w < batch; w++)
                {
                    stretch.Slice(w * HopSamples, WindowSamples).CopyTo(input.AsSpan(w * WindowSamples, WindowSamples));
                }

                IDisposableReadOnlyCollection<OrtValue> outputs;
                try
                {
                    using var tensor = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(0, batch * WindowSamples), [batch, WindowSamples]);
                    outputs = session.Run(runOptions, ["waveform"], [tensor], ["scores"]);
                }
                catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }

                using (outputs)
                {
                    var flat = outputs[0].GetTensorDataAsSpan<float>();
                    for (var w = 0; w < batch; w++)
                    {
                        onWindow(first + w, flat.Slice(w * Classes.Count, Classes.Count));
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(span);
            ArrayPool<float>.Shared.Return(input);
        }
    }

    public void Dispose()
    {
        session.Dispose();
        computeThreads.Dispose();
    }

    private static List<SoundClass> ReadClassMap(string path)
    {
        var classes = new List<SoundClass>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var fields = Csv.Split(line);
            classes.Add(new SoundClass(int.Parse(fields[0], System.Globalization.CultureInfo.InvariantCulture), fields[1], fields[2]));
        }

        return classes;
    }
}

/// <summary>Splits one CSV line with double-quoted fields (enough for YAMNet's class map).</summary>
internal static class Csv
{
    public static List<string> Split(string line)
    {
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else
            {
                field.Append(c);
            }
        }

        fields.Add(field.ToString());
        return fields;
    }
}
