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

        // Known before the upload is read, so a request abandoned or refused on the way is in the ledger under its model.
        var usage = Usage.UsageFeature.For(context);
        usage.Model = YamnetModel.Id;
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
        var admission = await host.Scheduler.AcquireAsync(Scheduling.SlotHolder.Of(context), cancellationToken);
        if (admission.Refusal(YamnetModel.Id) is { } refused)
        {
            return refused.ToResult();
        }

        ClassificationResult result;
        using (admission.Lease)
        {
            // On the model's own compute threads, below the front door's priority and within its share of the cores
            // (YamnetModel.ComputeAsync). Cancellation stops ONNX Runtime through RunOptions.Terminate. Windows are
            // read and scored in batches and summarised as they come.
            result = await model.ComputeAsync(() => SoundClassifier.Classify(model, audio, host.GenericLabels, query!, cancellationToken), cancellationToken);
        }

        usage.AudioSeconds = audio.DurationSeconds;
        return TypedResults.Json(result, LockNJson.Context.ClassificationResult);
    }
}
