using System.Threading.Channels;
using LockN.Classification;
using LockN.Http;
using LockN.Scheduling;
using LockN.Transcription;

namespace LockN.Streaming;

/// <summary>Where the last partial transcript got to: the segmenter's version and the buffer's end.</summary>
internal readonly record struct PartialMark(long Version, long End);

/// <summary>The utterance in progress, copied for a partial transcript.</summary>
internal sealed record PartialAudio(string ItemId, PartialMark Mark, float[] Samples);

/// <summary>
/// The audio side of one live stream, free of any protocol. PCM comes in through commands (<see cref="Append"/>,
/// <see cref="Commit"/>, <see cref="Clear"/>, <see cref="Apply"/>, <see cref="Complete"/>); what happens to it comes
/// out as <see cref="PipelineEvent"/>s on <see cref="Events"/>, in order. Audio is decoded and segmented inline
/// (Silero is ~500× faster than real time); finished utterances go to a Whisper slot one at a time, the utterance
/// in progress gets partials while a slot is idle, and YAMNet scores windows on its own slots. Audio waiting for a
/// model is bounded (<see cref="PipelineEvent.BacklogExceeded"/>). <see cref="StopAsync"/> cancels the run in
/// flight, which frees its slot at once. Commands come from one caller at a time (a protocol's receive loop).
/// </summary>
internal sealed class AudioPipeline : IAsyncDisposable
{
    private readonly Lock gate = new();
    private readonly Channel<PipelineEvent> events = Channel.CreateUnbounded<PipelineEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly WhisperModels models;
    private readonly YamnetHost yamnet;
    private readonly SileroVadModel? vadModel;
    private readonly AudioChunkBuffer buffer;
    private readonly StreamBacklog backlog;
    private readonly TimeSpan backlogLimit;
    private readonly UtteranceSegmenter segmenter;
    private readonly UtteranceTranscriber transcriber;
    private readonly SoundEventClassifier classifier;
    private readonly CancellationTokenSource stopping;
    private readonly Task workers;

    private volatile StreamSessionSettings settings;
    private volatile WhisperModelHost host;
    private PcmInput? input;
    private long samplesReceived;
    private bool overrun;
    private bool completed;

    public AudioPipeline(StreamingOptions options, WhisperModels models, YamnetHost yamnet, SileroVadModel? vadModel, TimeProvider time, CancellationToken connectionAborted)
    {
        this.models = models;
        this.yamnet = yamnet;
        this.vadModel = vadModel;
        host = models.Default ?? throw new InvalidOperationException("No default Whisper model.");
        settings = StreamSessionSettings.Default(models.DefaultModelId) with { Model = "whisper-1" };
        if (vadModel is null)
        {
            settings = settings with { TurnDetection = null };
        }

        var maxUtterance = (long)(options.MaxUtteranceSeconds * SamplePosition.Rate);
        buffer = new AudioChunkBuffer((int)maxUtterance + (4 * SamplePosition.Rate));
        backlogLimit = TimeSpan.FromSeconds(options.MaxBacklogSeconds);
        backlog = new StreamBacklog((long)(options.MaxBacklogSeconds * SamplePosition.Rate));
        transcriber = new UtteranceTranscriber(this, backlog, events.Writer, time);
        classifier = new SoundEventClassifier(yamnet, this, backlog, events.Writer);
        segmenter = new UtteranceSegmenter(buffer, vadModel, Id, maxUtterance, events.Writer, transcriber.Enqueue) { TurnDetection = settings.TurnDetection };
        stopping = CancellationTokenSource.CreateLinkedTokenSource(connectionAborted);
        workers = RunWorkersAsync(stopping.Token);
    }

    /// <summary>16 hex digits naming this stream; its utterances are <c>item_{Id}_{n}</c>.</summary>
    public string Id { get; } = Guid.NewGuid().ToString("N")[..16];

    /// <summary>Who holds the slots this stream takes (its key), for the console.</summary>
    public SlotHolder? SlotHolder { get; init; }

    /// <summary>Everything the pipeline reports, in order; completes once the input is complete and all work is done, or on stop.</summary>
    public ChannelReader<PipelineEvent> Events => events.Reader;

    public StreamSessionSettings Settings => settings;

    public string ModelId => host.Model.Id;

    /// <summary>Audio received so far, in samples (at 16 kHz, whatever the client's rate).</summary>
    public long SamplesReceived => Volatile.Read(ref samplesReceived);

    /// <summary>Seconds of audio received, for the usage ledger.</summary>
    public double AudioSeconds => SamplePosition.ToSeconds(SamplesReceived);

    /// <summary>True once the backlog was exceeded (<see cref="PipelineEvent.BacklogExceeded"/>): no more audio is taken.</summary>
    public bool Overrun => overrun;

    internal WhisperModelHost Host => host;

    /// <summary>
    /// Checks <paramref name="next"/> against the models and the stream so far and applies it, or returns why not
    /// (nothing changes). An error's <see cref="ApiError.Param"/> names the setting, e.g. <c>model</c>.
    /// </summary>
    public ApiError? Apply(StreamSessionSettings next)
    {
        if (input is not null && (next.InputAudioFormat != settings.InputAudioFormat || next.Model != settings.Model))
        {
            return ApiError.BadRequest("The audio format and model cannot change once audio has arrived; open a new stream.", "input_audio_format", "session_locked");
        }

        if (models.Resolve(next.Model) is not { } nextHost)
        {
            return ApiError.BadRequest($"The model '{next.Model}' does not exist or is not loaded. GET /v1/models lists the available models.", "model", "model_not_found");
        }

        if (nextHost.Model.IsEnglishOnly && next.Language is { } language && language != "en")
        {
            return ApiError.BadRequest($"Model '{nextHost.Model.Id}' is English-only; language '{language}' is not supported.", "language", "unsupported_language");
        }

        if (next.TurnDetection is not null && vadModel is null)
        {
            return ApiError.BadRequest("Voice detection is unavailable: silero_vad.onnx is not under the model directories. Use turn_detection: null and commit by hand.", "turn_detection", "vad_unavailable");
        }

        if (next.Classify && !yamnet.IsAvailable)
        {
            return ApiError.BadRequest("Sound classification is unavailable: yamnet.onnx is not under the model directories.", "classify", "model_not_found");
        }

        lock (gate)
        {
            if (next.Classify && !settings.Classify)
            {
                classifier.StartAt(buffer.End); // classify from here on
            }

            settings = next;
            host = nextHost;
            segmenter.TurnDetection = next.TurnDetection;
        }

        return null;
    }

    /// <summary>PCM bytes in the session's input format, in pieces of any size.</summary>
    public void Append(ReadOnlySpan<byte> pcm)
    {
        if (overrun || completed)
        {
            return;
        }

        input ??= new PcmInput(settings.InputAudioFormat, OnAudio);
        input.Write(pcm);
        CheckBacklog();
    }

    /// <summary>Ends the utterance in progress now (<see cref="PipelineEvent.NothingToCommit"/> when there is none).</summary>
    public void Commit()
    {
        if (completed)
        {
            return;
        }

        lock (gate)
        {
            input?.Flush();
            segmenter.Commit();
        }

        CheckBacklog();
    }

    /// <summary>Drops the audio of the utterance in progress, uncommitted.</summary>
    public void Clear()
    {
        lock (gate)
        {
            segmenter.Clear();
        }
    }

    /// <summary>The input is over: the open utterance and the last windows are finished, not dropped, and the work drains.</summary>
    public void Complete()
    {
        lock (gate)
        {
            if (completed)
            {
                return;
            }

            completed = true;
            input?.Flush();
            segmenter.EndOfStream();
            if (settings.Classify)
            {
                classifier.Cut(buffer, final: true);
            }
        }

        transcriber.Complete();
        classifier.Complete();
    }

    /// <summary>Cancels the work in flight (its slot is freed at once) and waits for the workers to end.</summary>
    public async Task StopAsync()
    {
        await stopping.CancelAsync();
        try
        {
            await workers;
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        lock (gate)
        {
            segmenter.Dispose();
        }

        transcriber.Dispose();
        stopping.Dispose();
    }

    /// <summary>Whether the utterance in progress has audio that the partial at <paramref name="since"/> did not cover.</summary>
    internal bool HasPartialAudio(PartialMark since)
    {
        lock (gate)
        {
            return PartialDue(since);
        }
    }

    internal PartialAudio? CopyPartialAudio(PartialMark since)
    {
        lock (gate)
        {
            return PartialDue(since)
                ? new PartialAudio(segmenter.OpenItem!, new PartialMark(segmenter.Version, buffer.End), buffer.Copy(Math.Max(segmenter.OpenStart, buffer.Start), buffer.End))
                : null;
        }
    }

    /// <summary>Reports a partial (its text may be empty), unless its utterance was committed meanwhile.</summary>
    internal void PublishPartial(string itemId, string text)
    {
        lock (gate)
        {
            if (segmenter.OpenItem == itemId)
            {
                events.Writer.TryWrite(new PipelineEvent.PartialTranscript(itemId, text));
            }
        }
    }

    // At least a second of speech that changed since the last partial.
    private bool PartialDue(PartialMark since) =>
        segmenter.OpenItem is not null && segmenter.Speaking && buffer.End - segmenter.OpenStart >= SamplePosition.Rate
        && (segmenter.Version != since.Version || buffer.End > since.End);

    /// <summary>16 kHz audio from the input: keep it, cut utterances, queue YAMNet windows.</summary>
    private void OnAudio(ReadOnlySpan<float> samples)
    {
        bool speaking;
        lock (gate)
        {
            buffer.Append(samples);
            Volatile.Write(ref samplesReceived, buffer.End);
            segmenter.Write(samples);
            if (settings.Classify)
            {
                classifier.Cut(buffer, final: false);
            }

            speaking = segmenter.OpenItem is not null && segmenter.Speaking;
        }

        // Silence wakes nobody: only an utterance in progress can be due a partial.
        if (speaking && settings.PartialIntervalMs > 0)
        {
            transcriber.AudioArrived();
        }
    }

    private void CheckBacklog()
    {
        if (!overrun && backlog.Exceeded)
        {
            overrun = true;
            events.Writer.TryWrite(new PipelineEvent.BacklogExceeded(backlogLimit));
        }
    }

    private async Task RunWorkersAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.WhenAll(
                Task.Run(() => transcriber.RunAsync(cancellationToken), CancellationToken.None),
                Task.Run(() => classifier.RunAsync(cancellationToken), CancellationToken.None));
        }
        finally
        {
            events.Writer.TryComplete();
        }
    }
}
