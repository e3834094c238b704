using LockN.Classification;
using LockN.Dispatch;
using LockN.Http;
using LockN.Transcription;

namespace LockN.Models;

internal sealed record ModelCard(
    string Id,
    string Object,
    long Created,
    string OwnedBy);

internal sealed record ModelList(
    string Object,
    IReadOnlyList<ModelCard> Data);

/// <summary>GET /v1/models and /v1/models/{id}, in OpenAI's shape.</summary>
internal static class ModelsApi
{
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/models", ([AsParameters] ModelSources sources) => TypedResults.Ok(new ModelList("list", Cards(sources))));
        app.MapGet("/v1/models/{id}", (string id, [AsParameters] ModelSources sources) =>
            Cards(sources).FirstOrDefault(c => c.Id.Equals(id, StringComparison.OrdinalIgnoreCase)) is { } card
                ? TypedResults.Ok(card)
                : ApiError.ModelNotFound(id).ToResult());
        return app;
    }

    /// <summary>Everything that serves a model: Whisper files, YAMNet, and the model servers behind Dispatch.</summary>
    internal readonly record struct ModelSources(WhisperModels Whisper, YamnetHost Yamnet, BackendRegistry Backends);

    private static List<ModelCard> Cards(ModelSources sources)
    {
        var models = sources.Whisper;
        var cards = models.All
            .Select(h => new ModelCard(h.Model.Id, "model", CreatedAt(h.Model.Path), "lockn"))
            .OrderBy(c => c.Id, StringComparer.Ordinal)
            .ToList();
        if (models.Default is { } fallback)
        {
            cards.Add(new ModelCard(WhisperModelCatalog.OpenAiAlias, "model", CreatedAt(fallback.Model.Path), "lockn"));
        }

        if (sources.Yamnet.ModelPath is { } yamnet)
        {
            cards.Add(new ModelCard(YamnetModel.Id, "model", CreatedAt(yamnet), "lockn"));
        }

        var created = sources.Backends.StartedAt.ToUnixTimeSeconds();
        cards.AddRange(sources.Backends.All
            .SelectMany(backend => backend.Models.Concat(backend.RouterModels?.Select(m => m.Id) ?? []).Distinct(StringComparer.OrdinalIgnoreCase)
                .Select(model => new ModelCard(model, "model", created, backend.Name)))
            .DistinctBy(card => card.Id, StringComparer.OrdinalIgnoreCase));
        return cards;
    }

    private static long CreatedAt(string path) => new DateTimeOffset(File.GetLastWriteTimeUtc(path)).ToUnixTimeSeconds();
}
