using System.Runtime.CompilerServices;
using Whisper.net;

namespace LockN.Transcription;

/// <summary>
/// Whisper.net in this process: owns the native model (<see cref="WhisperFactory"/>) and builds a cheap processor
/// per job. The worker process, the CLI and the benchmark's baseline all transcribe through this one class.
/// </summary>
internal sealed class WhisperRunner : IDisposable
{
    // whisper.cpp ignores input shorter than 1 s; pad short clips with silence so they are still transcribed.
    private const int MinimumSamples = 16000 + 1600;

    private readonly WhisperFactory factory;
    private readonly int threads;

    public WhisperRunner(string modelPath, int threads)
    {
        factory = WhisperFactory.FromPath(modelPath);
        this.threads = Math.Max(1, threads);
        IsEnglishOnly = WhisperModelCatalog.IsEnglishOnlyFile(modelPath);
    }

    public bool IsEnglishOnly { get; }

    /// <summary>Runs one short silent job so the first real request does not pay for native warm-up.</summary>
    public async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        await foreach (var _ in RunAsync(new float[MinimumSamples], new WhisperJob { Language = "en" }, null, cancellationToken))
        {
        }
    }

    public async IAsyncEnumerable<TranscriptSegment> RunAsync(
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

        var builder = factory.CreateBuilder()
            .WithThreads(threads)
            .WithLanguage(IsEnglishOnly ? "en" : job.Language ?? "auto")
            .WithTemperature(job.Temperature)
            .WithProbabilities();
        if (job.Translate)
        {
            builder = builder.WithTranslate();
        }

        if (!string.IsNullOrWhiteSpace(job.Prompt))
        {
            builder = builder.WithPrompt(job.Prompt);
        }

        if (job.WordTimestamps)
        {
            builder = builder.WithTokenTimestamps();
        }

        if (onProgress is not null)
        {
            builder = builder.WithProgressHandler(percent => onProgress(percent));
        }

        await using var processor = builder.Build();
        var id = 0;
        await foreach (var segment in processor.ProcessAsync(samples, cancellationToken).ConfigureAwait(false))
        {
            yield return ToSegment(id++, segment, job.WordTimestamps);
        }
    }

    private static TranscriptSegment ToSegment(int id, SegmentData segment, bool withWords)
    {
        var textTokens = segment.Tokens.Where(t => !IsSpecial(t)).ToArray();
        var avgLogprob = textTokens.Length == 0 ? 0f : textTokens.Average(t => t.ProbabilityLog);
        return new TranscriptSegment(
            id,
            Math.Round(segment.Start.TotalSeconds, 2),
            Math.Round(segment.End.TotalSeconds, 2),
            segment.Text,
            textTokens.Select(t => t.Id).ToArray(),
            avgLogprob,
            segment.NoSpeechProbability,
            segment.Language,
            withWords ? ToWords(textTokens) : []);
    }

    // Special tokens ([_BEG_], [_TT_123], <|endoftext|>) carry timing or control, not text.
    private static bool IsSpecial(WhisperToken token) =>
        token.Text is null || token.Text.StartsWith("[_", StringComparison.Ordinal) || token.Text.StartsWith("<|", StringComparison.Ordinal);

    /// <summary>Joins sub-word tokens into words: a token that starts with a space starts a new word.</summary>
    private static List<TranscriptWord> ToWords(WhisperToken[] tokens)
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

    public void Dispose() => factory.Dispose();
}
