using LockN.Classification;
using LockN.Http;
using LockN.Scheduling;
using LockN.Transcription;
using Microsoft.Extensions.Options;

namespace LockN.Streaming;

/// <summary>Builds each stream's <see cref="AudioPipeline"/> from the models this server holds, for every streaming protocol.</summary>
internal sealed class AudioPipelineFactory(WhisperModels models, YamnetHost yamnet, SileroVadHost vadHost, IOptions<StreamingOptions> options, TimeProvider time)
{
    /// <summary>The model a stream uses until its session names another.</summary>
    public string DefaultModelId => models.DefaultModelId;

    /// <summary>Why no stream can start now (the default model, or Silero VAD, is not loaded), or null; loads Silero VAD on first use.</summary>
    public async Task<ApiError?> CheckReadyAsync(CancellationToken cancellationToken)
    {
        if (models.Default is null)
        {
            return ApiError.Unavailable(models.DefaultModelProblem ?? $"The default model {models.DefaultModelId} is not available.", "model_not_ready");
        }

        if (vadHost.IsAvailable)
        {
            try
            {
                await vadHost.GetModelAsync().WaitAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return ApiError.Unavailable($"Silero VAD could not be loaded: {ex.Message}", "model_not_ready");
            }
        }

        return null;
    }

    /// <summary>A pipeline for one stream, after <see cref="CheckReadyAsync"/> found the models ready; it stops when the connection is aborted.</summary>
    /// <param name="holder">Who holds the models' slots while the stream uses them, as the console shows it.</param>
    public AudioPipeline Create(CancellationToken connectionAborted, SlotHolder? holder = null)
    {
        var vad = vadHost.Loaded;
        return new AudioPipeline(options.Value, models, yamnet, vad, time, connectionAborted) { SlotHolder = holder };
    }
}
