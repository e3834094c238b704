using System.Runtime.CompilerServices;
using LockN.Audio;
using LockN.Transcription;

namespace LockN.Tests.Transcription;

/// <summary>
/// How long audio is cut into pieces for whisper.cpp and the pieces' segments stitched back. The model files here have
/// no trained weights (no segments come out), so a transcriber whose segments follow from the audio itself stands in
/// for whisper.cpp's segmentation: the real worker path over long audio is covered by the spool tests.
/// </summary>
public class PiecewiseTranscriptionTests
{
    private const int Rate = 16_000;

    [Theory]
    [InlineData(50, 12, 7)] // several pieces, a segment cut at every edge
    [InlineData(36, 12, 12)] // segments exactly as long as a piece: the cut segment starts at 0, so the piece is kept whole
    [InlineData(30, 12, 1.5)] // many short segments per piece
    public async Task Segments_of_long_audio_come_out_once_each_with_times_from_the_start(double seconds, double pieceSeconds, double segmentSeconds)
    {
        // Each sample holds its own time, so the stand-in knows where in the whole audio a piece begins.
        var samples = Enumerable.Range(0, (int)(seconds * Rate)).Select(i => i / (float)Rate).ToArray();
        using var audio = DecodedSamples.InMemory(samples);
        var prompts = new List<string?>();

        var segments = new List<TranscriptSegment>();
        await foreach (var segment in WhisperRunner.RunInPiecesAsync(audio, new WhisperJob { Prompt = "first" }, (int)(pieceSeconds * Rate), Transcriber(segmentSeconds, seconds, prompts), CancellationToken.None))
        {
            segments.Add(segment);
        }

        var expected = (int)Math.Ceiling(seconds / segmentSeconds);
        Assert.Equal(Enumerable.Range(0, expected).Select(k => $"s{k}"), segments.Select(s => s.Text));
        Assert.Equal(Enumerable.Range(0, expected), segments.Select(s => s.Id));
        for (var k = 0; k < expected; k++)
        {
            Assert.Equal(k * segmentSeconds, segments[k].Start, 3);
            Assert.Equal(Math.Min((k + 1) * segmentSeconds, seconds), segments[k].End, 3);
            Assert.Equal(segments[k].Start + 0.25, segments[k].Words.Single().Start, 3);
        }

        Assert.Equal("first", prompts[0]);
        Assert.True(prompts.Count > 1, "the audio was not cut into pieces");
        Assert.All(prompts.Skip(1), p => Assert.StartsWith("s", p));
    }

    [Fact]
    public async Task After_a_job_longer_than_a_piece_the_lane_starts_over_with_a_fresh_state_and_keeps_working()
    {
        using var runner = new WhisperRunner(Path.Combine(TestAssets.WhisperModels, "for-tests-ggml-tiny.en.bin"), Environment.ProcessorCount, WhisperEngineSettings.Packaged);
        var job = new WhisperJob { Language = "en" };
        using var longAudio = DecodedSamples.InMemory(new float[WhisperRunner.PieceSamples + (30 * Rate)]);
        using var shortAudio = DecodedSamples.InMemory(new float[3 * Rate]);

        await foreach (var _ in runner.RunAsync(0, shortAudio, job, CancellationToken.None))
        {
        }

        Assert.Equal(0, runner.StatesRenewed); // a short job keeps the state
        await foreach (var _ in runner.RunAsync(0, longAudio, job, CancellationToken.None))
        {
        }

        Assert.Equal(1, runner.StatesRenewed);

        // The next job runs to the end on the new state (whisper.cpp's result code is checked: a failure throws).
        await foreach (var _ in runner.RunAsync(0, shortAudio, job, CancellationToken.None))
        {
        }

        Assert.Equal(1, runner.StatesRenewed);
    }

    [Fact]
    public async Task Audio_without_speech_advances_a_whole_piece_at_a_time()
    {
        using var audio = DecodedSamples.InMemory(new float[40 * Rate]);
        var pieces = new List<int>();
        await foreach (var _ in WhisperRunner.RunInPiecesAsync(audio, new WhisperJob(), 12 * Rate, (piece, _, _) => Silence(piece, pieces), CancellationToken.None))
        {
        }

        Assert.Equal([12 * Rate, 12 * Rate, 12 * Rate, 4 * Rate], pieces);
    }

    /// <summary>
    /// Segments every <paramref name="length"/> seconds of the whole audio, as whisper.cpp would see them in a piece:
    /// positions relative to the piece, the last one cut at the piece's end, and a piece that starts inside a segment
    /// starts with a fragment (which the stitching must never produce).
    /// </summary>
    private static WhisperRunner.PieceTranscriber Transcriber(double length, double total, List<string?> prompts) =>
        (piece, job, cancellationToken) => Segments(piece, job, length, total, prompts, cancellationToken);

    private static async IAsyncEnumerable<TranscriptSegment> Segments(ReadOnlyMemory<float> piece, WhisperJob job, double length, double total, List<string?> prompts, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        prompts.Add(job.Prompt);
        var from = Math.Round(piece.Span[0] * Rate) / Rate;
        var to = from + (piece.Length / (double)Rate);
        var k = (int)Math.Floor((from / length) + 1e-9);
        for (var id = 0; k * length < to - 1e-9; k++, id++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var start = Math.Max(k * length, from);
            var end = Math.Min((k + 1) * length, to);
            var text = start > (k * length) + 1e-9 ? $"fragment of s{k}" : end < Math.Min((k + 1) * length, total) - 1e-9 ? $"cut s{k}" : $"s{k}";
            yield return new TranscriptSegment(id, start - from, end - from, text, [], 0, 0, "en", [new TranscriptWord(text, start - from + 0.25, end - from, 1)]);
        }
    }

    private static async IAsyncEnumerable<TranscriptSegment> Silence(ReadOnlyMemory<float> piece, List<int> pieces)
    {
        await Task.Yield();
        pieces.Add(piece.Length);
        yield break;
    }
}
