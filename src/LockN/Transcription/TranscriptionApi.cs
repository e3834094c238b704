using System.Text.Json;
using LockN.Audio;
using LockN.Http;
using LockN.Scheduling;
using LockN.Transcription.Workers;
using LockN.Usage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace LockN.Transcription;

/// <summary>POST /v1/audio/transcriptions and /v1/audio/translations, as OpenAI defines them.</summary>
public static partial class TranscriptionApi
{
    public static IEndpointRouteBuilder MapTranscriptionApi(this IEndpointRouteBuilder app)
    {
        var audio = app.MapGroup("/v1/audio").DisableAntiforgery();
        audio.MapPost("/transcriptions", (HttpContext context, CancellationToken ct) => HandleAsync(context, translate: false, ct));
        audio.MapPost("/translations", (HttpContext context, CancellationToken ct) => HandleAsync(context, translate: true, ct));
        return app;
    }

    private static async Task<IResult> HandleAsync(HttpContext context, bool translate, CancellationToken cancellationToken)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<IOptions<TranscriptionOptions>>().Value;
        var models = services.GetRequiredService<WhisperModels>();
        var decoder = services.GetRequiredService<AudioDecoder>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(TranscriptionApi));

        // The upload limit is ours (413 in OpenAI's shape), not Kestrel's default of 30 MB.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = options.MaxUploadBytes + (1024 * 1024);
        }

        var (form, formError) = await MultipartForm.ReadAsync(context.Request, "file", options.MaxUploadBytes, cancellationToken);
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
            return AudioError(decoded).ToResult();
        }

        try
        {
            await host.EnsureStartedAsync().WaitAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return ApiError.Unavailable($"Model '{host.Model.Id}' could not be loaded: {ex.Message}", "model_not_ready").ToResult();
        }

        var admission = await host.Scheduler.AcquireAsync(cancellationToken);
        if (admission.Refusal(host.Model.Id) is { } refused)
        {
            return refused.ToResult();
        }

        var audio = decoded.Audio!;
        usage.AudioSeconds = audio.DurationSeconds;
        using var lease = admission.Lease!;
        var segments = host.RunAsync(audio.Samples, request.Job, cancellationToken);
        if (request.Stream)
        {
            await StreamAsync(context, segments, audio.DurationSeconds, logger, cancellationToken);
            return Results.Empty;
        }

        var collected = new List<TranscriptSegment>();
        try
        {
            await foreach (var segment in segments)
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
            ResponseFormat.Json => TypedResults.Json(TranscriptFormats.ToJson(transcript)),
            ResponseFormat.VerboseJson => TypedResults.Json(TranscriptFormats.ToVerboseJson(transcript, translate, request.SegmentTimestamps, request.Job.WordTimestamps)),
            ResponseFormat.Text => TypedResults.Text(TranscriptFormats.ToText(transcript), "text/plain; charset=utf-8"),
            ResponseFormat.Srt => TypedResults.Text(TranscriptFormats.ToSrt(transcript), "application/x-subrip; charset=utf-8"),
            ResponseFormat.Vtt => TypedResults.Text(TranscriptFormats.ToVtt(transcript), "text/vtt; charset=utf-8"),
            _ => throw new InvalidOperationException(),
        };
    }

    /// <summary>Server-sent events as OpenAI streams transcripts: a delta per segment, then done with the full text.</summary>
    private static async Task StreamAsync(HttpContext context, IAsyncEnumerable<TranscriptSegment> segments, double durationSeconds, ILogger logger, CancellationToken cancellationToken)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        await response.Body.FlushAsync(cancellationToken);

        var text = new System.Text.StringBuilder();
        try
        {
            await foreach (var segment in segments)
            {
                text.Append(segment.Text);
                await WriteEventAsync(response, new { type = "transcript.text.delta", delta = segment.Text }, cancellationToken);
            }

            await WriteEventAsync(response, new { type = "transcript.text.done", text = text.ToString().Trim(), usage = DurationUsage.For(durationSeconds) }, cancellationToken);
        }
        catch (WorkerFailedException ex)
        {
            LogWorkerFailed(logger, "stream", ex.Message);
            await WriteEventAsync(response, new { type = "error", error = ApiError.Internal($"Transcription failed: {ex.Message}").ToBody().Error }, cancellationToken);
        }
    }

    private static async Task WriteEventAsync(HttpResponse response, object payload, CancellationToken cancellationToken)
    {
        await response.WriteAsync("data: ", cancellationToken);
        await response.WriteAsync(JsonSerializer.Serialize(payload), cancellationToken);
        await response.WriteAsync("\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    internal static ApiError AudioError(AudioDecodeResult result) => result.Error switch
    {
        AudioDecodeError.UnsupportedMedia => ApiError.UnsupportedMedia(result.Message ?? "Unsupported media."),
        AudioDecodeError.TooLong => ApiError.TooLarge(result.Message ?? "The audio is too long."),
        AudioDecodeError.DecoderUnavailable => ApiError.Unavailable(result.Message ?? "No audio decoder is available.", "decoder_unavailable"),
        _ => ApiError.BadRequest(result.Message ?? "The audio could not be decoded.", "file", "invalid_audio"),
    };

    [LoggerMessage(Level = LogLevel.Error, Message = "Transcription with {ModelId} failed: {Message}")]
    private static partial void LogWorkerFailed(ILogger logger, string modelId, string message);
}
