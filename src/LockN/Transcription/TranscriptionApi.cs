using System.Text.Json.Serialization;
using LockN.Audio;
using LockN.Http;
using LockN.Scheduling;
using LockN.Transcription.Workers;
using LockN.Usage;
using Microsoft.Extensions.Options;

namespace LockN.Transcription;

/// <summary>POST /v1/audio/transcriptions and /v1/audio/translations, as OpenAI defines them.</summary>
internal static partial class TranscriptionApi
{
    public static IEndpointRouteBuilder MapTranscriptionApi(this IEndpointRouteBuilder app)
    {
        var audio = app.MapGroup("/v1/audio").DisableAntiforgery();
        audio.MapPost("/transcriptions", ([AsParameters] TranscriptionServices services, CancellationToken ct) => HandleAsync(services, translate: false, ct));
        audio.MapPost("/translations", ([AsParameters] TranscriptionServices services, CancellationToken ct) => HandleAsync(services, translate: true, ct));
        return app;
    }

    /// <summary>What a transcription request needs, bound by the framework.</summary>
    internal readonly record struct TranscriptionServices(HttpContext Context, IOptions<TranscriptionOptions> Options, WhisperModels Models, AudioDecoder Decoder, ILogger<WhisperModels> Logger);

    private static async Task<IResult> HandleAsync(TranscriptionServices services, bool translate, CancellationToken cancellationToken)
    {
        var (context, options, models, decoder, logger) = (services.Context, services.Options.Value, services.Models, services.Decoder, services.Logger);
        var (form, formError) = await MultipartForm.ReadAsync(context.Request, "file", options.MaxUploadBytes, $"{TranscriptionOptions.Section}:{nameof(TranscriptionOptions.MaxUploadBytes)}", cancellationToken);
        if (formError is not null)
        {
            return formError.ToResult();
        }

        var (request, requestError) = TranscriptionRequest.Parse(form!, translate);
        if (requestError is not null)
        {
            return requestError.ToResult();
        }

        if (models.Resolve(request!.Model) is not { } host)
        {
            return ApiError.ModelNotFound(request.Model).ToResult();
        }

        var usage = UsageFeature.For(context);
        usage.Model = host.Model.Id;

        if (host.Model.IsEnglishOnly && translate)
        {
            return ApiError.BadRequest($"Model '{host.Model.Id}' is English-only and cannot translate. Use a multilingual model such as whisper-base (lockn models pull base).", "model").ToResult();
        }

        if (host.Model.IsEnglishOnly && request.Job.Language is { } language && language != "en")
        {
            return ApiError.BadRequest($"Model '{host.Model.Id}' is English-only; language '{language}' is not supported.", "language").ToResult();
        }

        var decoded = await decoder.DecodeAsync(form!.File!, cancellationToken);
        if (!decoded.Succeeded)
        {
            return decoded.ToApiError().ToResult();
        }

        // Disposed with the response: a streamed answer still reads the samples after this method returns.
        var audio = decoded.Audio!;
        context.Response.RegisterForDispose(audio);
        try
        {
            await host.EnsureStartedAsync().WaitAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return ApiError.Unavailable($"Model '{host.Model.Id}' could not be loaded: {ex.Message}", "model_not_ready").ToResult();
        }

        var admission = await host.Scheduler.AcquireAsync(Scheduling.SlotHolder.Of(context), cancellationToken);
        if (admission.Refusal(host.Model.Id) is { } refused)
        {
            return refused.ToResult();
        }

        usage.AudioSeconds = audio.DurationSeconds;
        if (request.Stream)
        {
            // The lease moves into the stream: it is held until the last event is written or the client leaves
            // (and released with the response in any case; releasing twice is a no-op).
            context.Response.RegisterForDispose(admission.Lease!);
            return TypedResults.ServerSentEvents(StreamEventsAsync(admission.Lease!, host.RunAsync(audio.Samples, request.Job, cancellationToken), audio.DurationSeconds, logger, host.Model.Id));
        }

        using var lease = admission.Lease!;
        var collected = new List<TranscriptSegment>();
        try
        {
            await foreach (var segment in host.RunAsync(audio.Samples, request.Job, cancellationToken))
            {
                collected.Add(segment);
            }
        }
        catch (WorkerFailedException ex)
        {
            LogWorkerFailed(logger, host.Model.Id, ex.Message);
            return ApiError.Internal($"Transcription failed: {ex.Message}").ToResult();
        }

        var transcript = new Transcript(
            host.Model.Id,
            collected.Select(s => s.Language).FirstOrDefault(l => !string.IsNullOrEmpty(l) && l != "auto") ?? request.Job.Language ?? "en",
            audio.DurationSeconds,
            collected,
            request.Job.Temperature);
        return request.Format switch
        {
            ResponseFormat.Json => TypedResults.Json(TranscriptFormats.ToJson(transcript), LockNJson.Context.JsonTranscription),
            ResponseFormat.VerboseJson => TypedResults.Json(TranscriptFormats.ToVerboseJson(transcript, translate, request.SegmentTimestamps, request.Job.WordTimestamps), LockNJson.Context.VerboseTranscription),
            ResponseFormat.Text => TypedResults.Text(TranscriptFormats.ToText(transcript), "text/plain; charset=utf-8"),
            ResponseFormat.Srt => TypedResults.Text(TranscriptFormats.ToSrt(transcript), "application/x-subrip; charset=utf-8"),
            ResponseFormat.Vtt => TypedResults.Text(TranscriptFormats.ToVtt(transcript), "text/vtt; charset=utf-8"),
            _ => throw new InvalidOperationException(),
        };
    }

    /// <summary>Events as OpenAI streams transcripts: a delta per segment, then done with the full text (or an error).</summary>
    private static async IAsyncEnumerable<TranscriptionStreamEvent> StreamEventsAsync(SlotLease lease, IAsyncEnumerable<TranscriptSegment> segments, double durationSeconds, ILogger logger, string modelId)
    {
        using (lease)
        {
            var text = new System.Text.StringBuilder();
            await using var enumerator = segments.GetAsyncEnumerator();
            while (true)
            {
                TranscriptionStreamEvent next;
                try
                {
                    if (!await enumerator.MoveNextAsync())
                    {
                        break;
                    }

                    text.Append(enumerator.Current.Text);
                    next = TranscriptionStreamEvent.ForDelta(enumerator.Current.Text);
                }
                catch (WorkerFailedException ex)
                {
                    LogWorkerFailed(logger, modelId, ex.Message);
                    next = TranscriptionStreamEvent.ForError(ApiError.Internal($"Transcription failed: {ex.Message}"));
                }

                yield return next;
                if (next.Error is not null)
                {
                    yield break;
                }
            }

            yield return TranscriptionStreamEvent.ForDone(text.ToString().Trim(), DurationUsage.For(durationSeconds));
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Transcription with {ModelId} failed: {Message}")]
    private static partial void LogWorkerFailed(ILogger logger, string modelId, string message);
}

/// <summary>One server-sent event of a streamed transcription, in OpenAI's shape (members a kind does not use are left out).</summary>
internal sealed record TranscriptionStreamEvent(
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Delta = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Text = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DurationUsage? Usage = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] OpenAiError? Error = null)
{
    public static TranscriptionStreamEvent ForDelta(string delta) => new("transcript.text.delta", Delta: delta);

    public static TranscriptionStreamEvent ForDone(string text, DurationUsage usage) => new("transcript.text.done", Text: text, Usage: usage);

    public static TranscriptionStreamEvent ForError(ApiError error) => new("error", Error: error.ToBody().Error);
}
