using System.Text.Json.Serialization;
using LockN.Http;
using LockN.Transcription;

namespace LockN.Models;

public sealed record ModelCard(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("object")] string Kind,
    [property: JsonPropertyName("created")] long Created,
    [property: JsonPropertyName("owned_by")] string OwnedBy);

public sealed record ModelList(
    [property: JsonPropertyName("object")] string Kind,
    [property: JsonPropertyName("data")] IReadOnlyList<ModelCard> Data);

/// <summary>GET /v1/models and /v1/models/{id}, in OpenAI's shape.</summary>
public static class ModelsApi
{
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/models", (HttpContext context) => TypedResults.Ok(new ModelList("list", Cards(context))));
        app.MapGet("/v1/models/{id}", (string id, HttpContext context) =>
            Cards(context).FirstOrDefault(c => c.Id.Equals(id, StringComparison.OrdinalIgnoreCase)) is { } card
                ? Results.Ok(card)
                : ApiError.ModelNotFound(id).ToResult());
        return app;
    }

    private static List<ModelCard> Cards(HttpContext context)
    {
        var models = context.RequestServices.GetRequiredService<WhisperModels>();
        var cards = models.All
            .Select(h => new ModelCard(h.Model.Id, "model", CreatedAt(h.Model.Path), "lockn"))
            .OrderBy(c => c.Id, StringComparer.Ordinal)
            .ToList();
        if (models.Default is { } fallback)
        {
            cards.Add(new ModelCard(WhisperModelCatalog.OpenAiAlias, "model", CreatedAt(fallback.Model.Path), "lockn"));
        }

        if (context.RequestServices.GetService<Classification.YamnetHost>() is { ModelPath: { } yamnet })
        {
            cards.Add(new ModelCard(Classification.YamnetModel.Id, "model", CreatedAt(yamnet), "lockn"));
        }

        if (context.RequestServices.GetService<Dispatch.BackendRegistry>() is { } registry)
        {
            var created = registry.StartedAt.ToUnixTimeSeconds();
            cards.AddRange(registry.All
                .SelectMany(backend => backend.Models.Select(model => new ModelCard(model, "model", created, backend.Name)))
                .DistinctBy(card => card.Id, StringComparer.OrdinalIgnoreCase));
        }

        return cards;
    }

    private static long CreatedAt(string path) => new DateTimeOffset(File.GetLastWriteTimeUtc(path)).ToUnixTimeSeconds();
}
