using System.Buffers;
using Microsoft.ML.OnnxRuntime;

namespace LockN.Classification;

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

    public YamnetModel(string path, int threads, int maxWindowsPerRun = 256)
    {
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
        session = new InferenceSession(path, options);
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
    public static int WindowCount(int samples) =>
        samples <= WindowSamples ? 1 : 1 + (int)Math.Ceiling((samples - WindowSamples) / (double)HopSamples);

    /// <summary>Scores every window: result[window][class], sigmoid outputs in [0, 1].</summary>
    public float[][] Score(ReadOnlySpan<float> samples, CancellationToken cancellationToken)
    {
        var windows = WindowCount(samples.Length);
        var scores = new float[windows][];
        using var runOptions = new RunOptions();
        using var cancel = cancellationToken.Register(() => runOptions.Terminate = true);
        for (var first = 0; first < windows; first += maxWindowsPerRun)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = Math.Min(maxWindowsPerRun, windows - first);

            // Rented: a 5 s clip's windows are 600 KB, which would otherwise be a large-object allocation per request.
            var input = ArrayPool<float>.Shared.Rent(batch * WindowSamples);
            IDisposableReadOnlyCollection<OrtValue> outputs;
            try
            {
                for (var w = 0; w < batch; w++)
                {
                    var start = (first + w) * HopSamples;
                    var length = Math.Clamp(samples.Length - start, 0, WindowSamples);
                    var window = input.AsSpan(w * WindowSamples, WindowSamples);
                    samples.Slice(start, length).CopyTo(window);
                    window[length..].Clear(); // the zero padding of a last, short window
                }

                using var tensor = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input.AsMemory(0, batch * WindowSamples), [batch, WindowSamples]);
                outputs = session.Run(runOptions, ["waveform"], [tensor], ["scores"]);
            }
            catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(input);
            }

            using (outputs)
            {
                var flat = outputs[0].GetTensorDataAsSpan<float>();
                for (var w = 0; w < batch; w++)
                {
                    scores[first + w] = flat.Slice(w * Classes.Count, Classes.Count).ToArray();
                }
            }
        }

        return scores;
    }

    public void Dispose() => session.Dispose();

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
