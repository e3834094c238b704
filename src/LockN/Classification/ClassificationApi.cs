using LockN.Audio;
using LockN.Http;
using LockN.Scheduling;
using Microsoft.Extensions.Options;

namespace LockN.Classification;

/// <summary>POST /v1/audio/classifications: environmental sound events with YAMNet (scope <c>classify</c>).</summary>
internal static class ClassificationApi
{
    public static IEndpointRouteBuilder MapClassificationApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/audio/classifications", HandleAsync).DisableAntiforgery();
        return app;
    }

    private static async Task<IResult> HandleAsync(HttpContext context, YamnetHost host, AudioDecoder decoder, IOptions<ClassificationOptions> options, CancellationToken cancellationToken)
    {
        if (!host.IsAvailable)
        {
            return ApiError.ModelNotFound(YamnetModel.Id).ToResult();
        }

        var (form, formError) = await MultipartForm.ReadAsync(context.Request, "file", options.Value.MaxUploadBytes, $"{ClassificationOptions.Section}:{nameof(ClassificationOptions.MaxUploadBytes)}", cancellationToken);
        if (formError is not null)
        {
            return formError.ToResult();
        }

        YamnetModel model;
        try
        {
            model = await host.GetModelAsync().WaitAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return ApiError.Unavailable($"Model '{YamnetModel.Id}' could not be loaded: {ex.GetBaseException().Message}", "model_not_ready").ToResult();
        }

        var (query, queryError) = ClassificationRequest.Parse(form!, model.Classes);
        if (queryError is not null)
        {
            return queryError.ToResult();
        }

        var decoded = await decoder.DecodeAsync(form!.File!, cancellationToken);
        if (!decoded.Succeeded)
        {
            return decoded.ToApiError().ToResult();
        }

        using var audio = decoded.Audio!;
        var admission = await host.Scheduler.AcquireAsync(cancellationToken);
        if (admission.Refusal(YamnetModel.Id) is { } refused)
        {
            return refused.ToResult();
        }

        ClassificationResult result;
        using (admission.Lease)
        {
            // ONNX Runtime runs synchronously, here on the request's own pool thread: the slots bound how many threads
            // it holds, and a hop to another pool thread would only add a wake-up. Cancellation stops it through
            // RunOptions.Terminate. Windows are read and scored in batches and summarised as they come.
            result = await model.ComputeAsync(() => SoundClassifier.Classify(model, audio, host.GenericLabels, query!, cancellationToken), cancellationToken);
        }

        var usage = Usage.UsageFeature.For(context);
        usage.Model = YamnetModel.Id;
        usage.AudioSeconds = audio.DurationSeconds;
        return TypedResults.Json(result, LockNJson.Context.ClassificationResult);
    }
}
