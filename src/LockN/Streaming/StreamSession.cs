using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using LockN.Classification;
using LockN.Scheduling;
using LockN.Transcription;
using LockN.Transcription.Workers;

namespace LockN.Streaming;

/// <summary>
/// One live stream. The receive loop decodes audio, runs voice activity detection inline (it is ~500× faster than
/// real time) and cuts utterances; a transcriber loop takes finished utterances to a Whisper slot (and, when a
/// slot is idle, re-decodes the utterance in progress for partial transcripts); a classifier loop scores YAMNet
/// windows. Everything hangs off one cancellation token: when the client goes, the in-flight Whisper or YAMNet
/// run is cancelled and its slot freed.
/// </summary>
internal sealed partial class StreamSession
{
    private const int SampleRate = PcmInput.TargetRate;

    private readonly WebSocket socket;
    private readonly StreamingOptions options;
    private readonly WhisperModels models;
    private readonly YamnetHost yamnet;
    private readonly SileroVadModel? vadModel;
    private readonly ILogger logger;
    private readonly string id = "sess_" + Guid.NewGuid().ToString("N")[..16];
    private readonly SemaphoreSlim sendLock = new(1, 1);
    private readonly Lock audioLock = new();
    private readonly AudioChunkBuffer buffer;
    private readonly Channel<Utterance> utterances = Channel.CreateUnbounded<Utterance>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<WindowBatch> windows = Channel.CreateUnbounded<WindowBatch>(new UnboundedChannelOptions { SingleReader = true });
    private readonly long maxUtteranceSamples;
    private readonly long maxBacklogSamples;

    private StreamSessionSettings settings;
    private WhisperModelHost host;
    private PcmInput? input;
    private VoiceActivityDetector? vad;
    private CancellationTokenSource session = new();
    private long eventCounter;
    private int itemCounter;
    private long lastSentAt = Environment.TickCount64;
    private long lastReceivedAt = Environment.TickCount64;
    private long backlogSamples;
    private bool closing;

    // The utterance in progress (guarded by audioLock): its item and first sample; -1 when none is open.
    private string? openItem;
    private long openStart = -1;
    private long finalisedUpTo;
    private long partialVersion;

    // Classification progress: the next YAMNet window to score starts at nextWindow × hop.
    private long nextWindow;

    public StreamSession(WebSocket socket, StreamingOptions options, WhisperModels models, YamnetHost yamnet, SileroVadModel? vadModel, ILogger logger)
    {
        this.socket = socket;
        this.options = options;
        this.models = models;
        this.yamnet = yamnet;
        this.vadModel = vadModel;
        this.logger = logger;
        maxUtteranceSamples = (long)(options.MaxUtteranceSeconds * SampleRate);
        maxBacklogSamples = (long)(options.MaxBacklogSeconds * SampleRate);
        buffer = new AudioChunkBuffer((int)maxUtteranceSamples + (4 * SampleRate));
        settings = StreamSessionSettings.Default(models.DefaultModelId) with { Model = "whisper-1" };
        if (vadModel is null)
        {
            settings = settings with { TurnDetection = null };
        }

        host = models.Default ?? throw new InvalidOperationException("No default Whisper model.");
    }

    /// <summary>Seconds of audio received (at 16 kHz), for the usage ledger.</summary>
    public double AudioSeconds => buffer.End / (double)SampleRate;

    public string ModelId => host.Model.Id;

    public async Task RunAsync(CancellationToken aborted)
    {
        session = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        var token = session.Token;
        Task transcriber = Task.CompletedTask, classifier = Task.CompletedTask, watchdog = Task.CompletedTask;
        try
        {
            await SendAsync(new SessionEvent(SessionEvent.Created, Describe()));
            transcriber = Task.Run(() => TranscribeLoopAsync(token), CancellationToken.None);
            classifier = Task.Run(() => ClassifyLoopAsync(token), CancellationToken.None);
            watchdog = Task.Run(() => WatchdogAsync(token), CancellationToken.None);

            var graceful = await ReceiveLoopAsync(token);
            if (graceful)
            {
                // The client closed its side: finish what it sent, then close ours.
                FinishAudio();
                utterances.Writer.TryComplete();
                windows.Writer.TryComplete();
                await Task.WhenAll(transcriber, classifier);
                await CloseAsync(WebSocketCloseStatus.NormalClosure, "session ended");
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException)
        {
            // The client went away or the session was ended: nothing left to tell anyone.
        }
        finally
        {
            closing = true;
            await session.CancelAsync();
            utterances.Writer.TryComplete();
            windows.Writer.TryComplete();
            await Task.WhenAll(Quietly(transcriber), Quietly(classifier), Quietly(watchdog));
            vad?.Dispose();
            session.Dispose();
            LogEnded(logger, id, AudioSeconds);
        }
    }

    /// <summary>Reads messages until the client closes (true) or a protocol limit ends the session (false).</summary>
    private async Task<bool> ReceiveLoopAsync(CancellationToken token)
    {
        var rented = ArrayPool<byte>.Shared.Rent(64 * 1024);
        var text = new ArrayBufferWriter<byte>();
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(rented.AsMemory(), token);
                Volatile.Write(ref lastReceivedAt, Environment.TickCount64);
                switch (result.MessageType)
                {
                    case WebSocketMessageType.Close:
                        return true;
                    case WebSocketMessageType.Binary:
                        if (!await OnAudioBytesAsync(rented.AsMemory(0, result.Count)))
                        {
                            return false;
                        }

                        break;
                    case WebSocketMessageType.Text:
                        if (text.WrittenCount + result.Count > options.MaxMessageBytes)
                        {
                            await FailAsync(StreamError.Invalid($"A message may be at most {options.MaxMessageBytes} bytes.", code: "message_too_large"), WebSocketCloseStatus.MessageTooBig);
                            return false;
                        }

                        text.Write(rented.AsSpan(0, result.Count));
                        if (result.EndOfMessage)
                        {
                            var keepGoing = await OnTextAsync(text.WrittenMemory);
                            text.ResetWrittenCount();
                            if (!keepGoing)
                            {
                                return false;
                            }
                        }

                        break;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private async Task<bool> OnTextAsync(ReadOnlyMemory<byte> message)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(message);
        }
        catch (JsonException ex)
        {
            await SendErrorAsync(StreamError.Invalid($"The message is not valid JSON: {ex.Message}", code: "invalid_json"));
            return true;
        }

        using (document)
        {
            var root = document.RootElement;
            var type = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            switch (type)
            {
                case "session.update":
                    await UpdateSessionAsync(root.TryGetProperty("session", out var s) ? s : default);
                    return true;
                case "input_audio_buffer.append":
                    if (!root.TryGetProperty("audio", out var audio) || audio.ValueKind != JsonValueKind.String)
                    {
                        await SendErrorAsync(StreamError.Invalid("'audio' must be a base64 string of PCM bytes.", "audio", "invalid_audio"));
                        return true;
                    }

                    byte[] bytes;
                    try
                    {
                        bytes = Convert.FromBase64String(audio.GetString()!);
                    }
                    catch (FormatException)
                    {
                        await SendErrorAsync(StreamError.Invalid("'audio' is not valid base64.", "audio", "invalid_audio"));
                        return true;
                    }

                    return await OnAudioBytesAsync(bytes);
                case "input_audio_buffer.commit":
                    await CommitAsync();
                    return true;
                case null:
                    await SendErrorAsync(StreamError.Invalid("Every message needs a string 'type'.", "type", "invalid_event"));
                    return true;
                default:
                    await SendErrorAsync(StreamError.Invalid($"Unknown event type '{type}'. Clients send session.update, input_audio_buffer.append and input_audio_buffer.commit.", "type", "unknown_event"));
                    return true;
            }
        }
    }

    private async Task UpdateSessionAsync(JsonElement update)
    {
        var (next, error) = settings.Apply(update);
        if (error is null && input is not null && (next!.InputAudioFormat != settings.InputAudioFormat || next.Model != settings.Model))
        {
            error = StreamError.Invalid("The audio format and model cannot change once audio has arrived; open a new stream.", "session.input_audio_format", "session_locked");
        }

        WhisperModelHost? nextHost = null;
        if (error is null && models.Resolve(next!.Model) is not { } resolved)
        {
            error = StreamError.Invalid($"The model '{next.Model}' does not exist or is not loaded. GET /v1/models lists the available models.", "session.model", "model_not_found");
        }
        else if (error is null)
        {
            nextHost = models.Resolve(next!.Model)!;
            if (nextHost.Model.IsEnglishOnly && next.Language is { } language && language != "en")
            {
                error = StreamError.Invalid($"Model '{nextHost.Model.Id}' is English-only; language '{language}' is not supported.", "session.language", "unsupported_language");
            }
            else if (next.TurnDetection is not null && vadModel is null)
            {
                error = StreamError.Invalid("Voice detection is unavailable: silero_vad.onnx is not under the model directories. Use turn_detection: null and commit by hand.", "session.turn_detection", "vad_unavailable");
            }
            else if (next.Classify && !yamnet.IsAvailable)
            {
                error = StreamError.Invalid("Sound classification is unavailable: yamnet.onnx is not under the model directories.", "session.classify", "model_not_found");
            }
        }

        if (error is not null)
        {
            await SendErrorAsync(error);
            return;
        }

        lock (audioLock)
        {
            if (next!.Classify && !settings.Classify)
            {
                nextWindow = (buffer.End + YamnetModel.HopSamples - 1) / YamnetModel.HopSamples; // classify from here on
            }

            settings = next;
            host = nextHost!;
            if (vad is not null && next.TurnDetection is not null)
            {
                vad.Settings = next.TurnDetection;
            }
        }

        await SendAsync(new SessionEvent(SessionEvent.Updated, Describe()));
    }

    private async Task<bool> OnAudioBytesAsync(ReadOnlyMemory<byte> bytes)
    {
        if (input is null)
        {
            input = new PcmInput(settings.InputAudioFormat, OnAudio);
            if (vadModel is not null)
            {
                vad = new VoiceActivityDetector(vadModel, settings.TurnDetection ?? StreamSessionSettings.Default("").TurnDetection!);
            }
        }

        pendingEvents.Clear();
        input.Write(bytes.Span);
        return await AfterAudioAsync();
    }

    // Events produced while handling audio synchronously; sent once the audio is handled.
    private readonly List<StreamEvent> pendingEvents = [];

    /// <summary>16 kHz audio from the client: keep it, detect speech, cut utterances, queue YAMNet windows.</summary>
    private void OnAudio(ReadOnlySpan<float> samples)
    {
        lock (audioLock)
        {
            buffer.Append(samples);
            if (settings.TurnDetection is not null && vad is not null)
            {
                foreach (var transition in vad.Process(samples))
                {
                    if (transition.SpeechStarted)
                    {
                        var prefix = settings.TurnDetection.PrefixPaddingMs * SampleRate / 1000;
                        openStart = Math.Max(Math.Max(transition.Position - prefix, buffer.Start), finalisedUpTo);
                        openItem = NextItemId();
                        pendingEvents.Add(new SpeechStarted(openItem, transition.Position * 1000 / SampleRate));
                    }
                    else if (openItem is not null)
                    {
                        pendingEvents.Add(new SpeechStopped(openItem, transition.Position * 1000 / SampleRate));
                        // A little audio past the last speech chunk keeps Whisper from clipping the final word.
                        FinaliseOpen(Math.Min(buffer.End, transition.Position + (SampleRate / 5)));
                    }
                }
            }
            else if (openItem is null)
            {
                openItem = NextItemId();
                openStart = Math.Max(finalisedUpTo, buffer.End - samples.Length);
            }

            if (openItem is not null && buffer.End - openStart >= maxUtteranceSamples)
            {
                // Whisper decodes 30 s windows: a longer utterance is cut here and goes on as a new item.
                var continuing = vad?.InSpeech == true || settings.TurnDetection is null;
                FinaliseOpen(buffer.End);
                if (continuing)
                {
                    openItem = NextItemId();
                    openStart = buffer.End;
                }
            }

            QueueWindows(final: false);
        }
    }

    private async Task<bool> AfterAudioAsync()
    {
        foreach (var pending in pendingEvents)
        {
            await SendAsync(pending);
        }

        pendingEvents.Clear();
        if (Interlocked.Read(ref backlogSamples) > maxBacklogSamples)
        {
            await FailAsync(
                StreamError.Invalid($"Audio is arriving faster than it can be processed: more than {options.MaxBacklogSeconds:0.#} s are waiting. Send at real time or open fewer streams.", code: "backlog_exceeded"),
                WebSocketCloseStatus.PolicyViolation);
            return false;
        }

        return true;
    }

    private async Task CommitAsync()
    {
        pendingEvents.Clear();
        lock (audioLock)
        {
            input?.Flush();
            if (openItem is not null && buffer.End > openStart)
            {
                if (vad?.ForceStop(buffer.End) is { } stop)
                {
                    pendingEvents.Add(new SpeechStopped(openItem, stop.Position * 1000 / SampleRate));
                }

                pendingEvents.Add(new BufferCommitted(openItem, openStart * 1000 / SampleRate, buffer.End * 1000 / SampleRate));
                FinaliseOpen(buffer.End);
            }
            else
            {
                pendingEvents.Add(new ErrorEvent(StreamError.Invalid("Nothing to commit: no audio has arrived since the last utterance.", code: "input_audio_buffer_commit_empty")));
            }
        }

        await AfterAudioAsync();
    }

    /// <summary>The client closed: the open utterance and the last YAMNet windows are finished, not dropped.</summary>
    private void FinishAudio()
    {
        lock (audioLock)
        {
            input?.Flush();
            if (openItem is not null && buffer.End > openStart && (settings.TurnDetection is null || vad?.InSpeech == true))
            {
                vad?.ForceStop(buffer.End);
                FinaliseOpen(buffer.End);
            }

            QueueWindows(final: true);
        }
    }

    private void FinaliseOpen(long end)
    {
        var start = Math.Max(openStart, buffer.Start);
        if (end > start)
        {
            var samples = buffer.Copy(start, end);
            Interlocked.Add(ref backlogSamples, samples.Length);
            utterances.Writer.TryWrite(new Utterance(openItem!, start, end, samples));
        }

        finalisedUpTo = end;
        openItem = null;
        openStart = -1;
        partialVersion++;
    }

    private void QueueWindows(bool final)
    {
        if (!settings.Classify)
        {
            return;
        }

        // Score whole windows two hops (~1 s) at a time; at the end, whatever is left, zero-padded.
        var first = nextWindow * YamnetModel.HopSamples;
        var ready = buffer.End < first + YamnetModel.WindowSamples ? 0 : 1 + ((buffer.End - first - YamnetModel.WindowSamples) / YamnetModel.HopSamples);
        if (ready < 2 && !(final && buffer.End > first))
        {
            return;
        }

        var count = Math.Max(1, ready);
        var end = Math.Min(buffer.End, first + ((count - 1) * YamnetModel.HopSamples) + YamnetModel.WindowSamples);
        var samples = buffer.Copy(Math.Max(first, buffer.Start), end);
        Interlocked.Add(ref backlogSamples, count * YamnetModel.HopSamples);
        windows.Writer.TryWrite(new WindowBatch(nextWindow, (int)count, samples));
        nextWindow += count;
    }

    private async Task TranscribeLoopAsync(CancellationToken token)
    {
        long lastPartialVersion = -1, lastPartialEnd = 0;
        var lastPartialAt = 0L;
        while (!token.IsCancellationRequested)
        {
            if (utterances.Reader.TryRead(out var utterance))
            {
                try
                {
                    await TranscribeAsync(utterance, token);
                }
                finally
                {
                    Interlocked.Add(ref backlogSamples, -utterance.Samples.Length);
                }

                continue;
            }

            if (utterances.Reader.Completion.IsCompleted)
            {
                return;
            }

            var interval = settings.PartialIntervalMs;
            if (interval > 0 && Environment.TickCount64 - lastPartialAt >= interval)
            {
                Utterance? snapshot = null;
                lock (audioLock)
                {
                    var speaking = settings.TurnDetection is null || vad?.InSpeech == true;
                    if (openItem is not null && speaking && buffer.End - openStart >= SampleRate && (partialVersion != lastPartialVersion || buffer.End > lastPartialEnd))
                    {
                        snapshot = new Utterance(openItem, openStart, buffer.End, []);
                    }
                }

                if (snapshot is not null && host.Scheduler.TryAcquire() is { } lease)
                {
                    using (lease)
                    {
                        float[] samples;
                        long version;
                        lock (audioLock)
                        {
                            version = partialVersion;
                            samples = openItem == snapshot.ItemId ? buffer.Copy(Math.Max(snapshot.Start, buffer.Start), buffer.End) : [];
                        }

                        if (samples.Length > 0)
                        {
                            lastPartialAt = Environment.TickCount64;
                            lastPartialVersion = version;
                            lastPartialEnd = snapshot.Start + samples.Length;
                            var (text, _, _) = await RunWhisperAsync(samples, 0, words: false, token);
                            var stillOpen = false;
                            lock (audioLock)
                            {
                                stillOpen = openItem == snapshot.ItemId;
                            }

                            if (stillOpen && text.Length > 0)
                            {
                                await SendAsync(new TranscriptDelta(snapshot.ItemId, text));
                            }
                        }
                    }
                }
            }

            using var wait = CancellationTokenSource.CreateLinkedTokenSource(token);
            wait.CancelAfter(interval > 0 ? Math.Clamp(interval / 4, 20, 250) : 250);
            try
            {
                await utterances.Reader.WaitToReadAsync(wait.Token);
            }
            catch (OperationCanceledException) when (!token.IsCancellationRequested)
            {
            }
        }
    }

    private async Task TranscribeAsync(Utterance utterance, CancellationToken token)
    {
        var admission = await host.Scheduler.AcquireAsync(token);
        switch (admission.Outcome)
        {
            case AdmissionOutcome.QueueFull:
                await SendAsync(new ErrorEvent(StreamError.Server("queue_full", $"Utterance {utterance.ItemId} was not transcribed: the queue for model '{host.Model.Id}' is full.")));
                return;
            case AdmissionOutcome.DeadlineExceeded:
                await SendAsync(new ErrorEvent(StreamError.Server("deadline_exceeded", $"Utterance {utterance.ItemId} was not transcribed: no slot of model '{host.Model.Id}' became free within {admission.Waited.TotalSeconds:0.#} s.")));
                return;
        }

        using var lease = admission.Lease!;
        try
        {
            var offset = utterance.Start / (double)SampleRate;
            var (text, language, words) = await RunWhisperAsync(utterance.Samples, offset, settings.WordTimestamps, token);
            await SendAsync(new TranscriptCompleted(utterance.ItemId, text, Math.Round(offset, 3), Math.Round(utterance.End / (double)SampleRate, 3), language, words));
        }
        catch (WorkerFailedException ex)
        {
            await SendAsync(new ErrorEvent(StreamError.Server("transcription_failed", $"Utterance {utterance.ItemId} could not be transcribed: {ex.Message}")));
        }
    }

    private async Task<(string Text, string? Language, IReadOnlyList<TranscriptWord>? Words)> RunWhisperAsync(float[] samples, double offset, bool words, CancellationToken token)
    {
        var job = new WhisperJob { Language = settings.Language, Prompt = settings.Prompt, WordTimestamps = words };
        var text = new StringBuilder();
        string? language = null;
        List<TranscriptWord>? collected = words ? [] : null;
        await foreach (var segment in host.RunAsync(samples, job, token))
        {
            text.Append(segment.Text);
            language ??= segment.Language;
            if (collected is not null && segment.Words is { } segmentWords)
            {
                collected.AddRange(segmentWords.Select(w => w with { Start = Math.Round(w.Start + offset, 3), End = Math.Round(w.End + offset, 3) }));
            }
        }

        return (text.ToString().Trim(), language, collected);
    }

    private async Task ClassifyLoopAsync(CancellationToken token)
    {
        var open = new Dictionary<int, (double Start, double End, double Peak)>();
        await foreach (var batch in windows.Reader.ReadAllAsync(token))
        {
            try
            {
                await ClassifyBatchAsync(batch, open, token);
            }
            finally
            {
                Interlocked.Add(ref backlogSamples, -(long)batch.Count * YamnetModel.HopSamples);
            }
        }

        foreach (var (index, span) in open.OrderBy(e => e.Value.Start))
        {
            await SendSoundAsync(index, span);
        }
    }

    private async Task ClassifyBatchAsync(WindowBatch batch, Dictionary<int, (double Start, double End, double Peak)> open, CancellationToken token)
    {
        var model = await yamnet.GetModelAsync().WaitAsync(token);
        var admission = await yamnet.Scheduler.AcquireAsync(token);
        if (admission.Outcome != AdmissionOutcome.Admitted)
        {
            await SendAsync(new ErrorEvent(StreamError.Server(admission.Outcome == AdmissionOutcome.QueueFull ? "queue_full" : "deadline_exceeded", $"Sound classification skipped {batch.Count * YamnetModel.HopSeconds:0.##} s of audio: YAMNet is busy.")));
            return;
        }

        float[][] scores;
        using (admission.Lease)
        {
            scores = await Task.Run(() => model.Score(batch.Samples, token), token);
        }

        var threshold = settings.ClassifyThreshold;
        for (var w = 0; w < Math.Min(batch.Count, scores.Length); w++)
        {
            var start = (batch.FirstWindow + w) * YamnetModel.HopSeconds;
            var end = start + YamnetModel.WindowSeconds;
            var above = new HashSet<int>();
            for (var c = 0; c < scores[w].Length; c++)
            {
                if (scores[w][c] >= threshold && !yamnet.GenericLabels.Contains(model.Classes[c].Name))
                {
                    above.Add(c);
                    open[c] = open.TryGetValue(c, out var span) ? (span.Start, end, Math.Max(span.Peak, scores[w][c])) : (start, end, scores[w][c]);
                }
            }

            foreach (var ended in open.Keys.Where(c => !above.Contains(c)).ToList())
            {
                await SendSoundAsync(ended, open[ended]);
                open.Remove(ended);
            }
        }
    }

    private Task SendSoundAsync(int index, (double Start, double End, double Peak) span)
    {
        var model = yamnet.GetModelAsync().Result;
        var soundClass = model.Classes[index];
        var end = Math.Min(span.End, AudioSeconds);
        return SendAsync(new SoundDetected(soundClass.Name, soundClass.Mid, index, Math.Round(span.Start, 3), Math.Round(Math.Max(end, span.Start), 3), Math.Round(span.Peak, 4)));
    }

    /// <summary>Sends keepalives when the stream is quiet and ends a stream whose client sends nothing.</summary>
    private async Task WatchdogAsync(CancellationToken token)
    {
        var period = TimeSpan.FromMilliseconds(Math.Min(1000, options.KeepAliveSeconds * 1000 / 2));
        using var timer = new PeriodicTimer(period);
        while (await timer.WaitForNextTickAsync(token))
        {
            var now = Environment.TickCount64;
            if (now - Volatile.Read(ref lastReceivedAt) >= options.IdleTimeoutSeconds * 1000)
            {
                await FailAsync(StreamError.Invalid($"Nothing was received for {options.IdleTimeoutSeconds:0.#} s; the stream is closed.", code: "idle_timeout"), WebSocketCloseStatus.NormalClosure);
                await Task.Delay(TimeSpan.FromSeconds(2), token); // let the client answer the close, then let go
                await session.CancelAsync();
                return;
            }

            if (now - Volatile.Read(ref lastSentAt) >= options.KeepAliveSeconds * 1000)
            {
                await SendAsync(new KeepAlive());
            }
        }
    }

    private Task SendErrorAsync(StreamError error) => SendAsync(new ErrorEvent(error));

    /// <summary>Sends an error event, then closes the stream with <paramref name="status"/>.</summary>
    private async Task FailAsync(StreamError error, WebSocketCloseStatus status)
    {
        LogClosed(logger, id, error.Code);
        await SendErrorAsync(error);
        await CloseAsync(status, error.Code);
    }

    private async Task CloseAsync(WebSocketCloseStatus status, string reason)
    {
        await sendLock.WaitAsync(CancellationToken.None);
        try
        {
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                closing = true;
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await socket.CloseOutputAsync(status, reason, timeout.Token);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
        }
        finally
        {
            sendLock.Release();
        }
    }

    private async Task SendAsync(StreamEvent message)
    {
        message.EventId = "event_" + Interlocked.Increment(ref eventCounter).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(message, message.GetType(), StreamJson.Options);
        await sendLock.WaitAsync(session.Token);
        try
        {
            if (closing && socket.State != WebSocketState.CloseReceived)
            {
                return;
            }

            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, session.Token);
                Volatile.Write(ref lastSentAt, Environment.TickCount64);
            }
        }
        finally
        {
            sendLock.Release();
        }
    }

    private SessionDescription Describe() => new(id, "transcription_session", settings);

    private string NextItemId() => $"item_{id[5..]}_{++itemCounter}";

    private static async Task Quietly(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException or ChannelClosedException)
        {
        }
    }

    private sealed record Utterance(string ItemId, long Start, long End, float[] Samples);

    private sealed record WindowBatch(long FirstWindow, int Count, float[] Samples);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Stream {SessionId} ended after {AudioSeconds:0.0} s of audio")]
    private static partial void LogEnded(ILogger logger, string sessionId, double audioSeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stream {SessionId} closed by the server: {Code}")]
    private static partial void LogClosed(ILogger logger, string sessionId, string code);
}

internal static class StreamJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never,
    };
}
