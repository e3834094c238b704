using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using LockN.Classification;
using LockN.Dispatch;
using LockN.Health;
using LockN.Keys;
using LockN.Models;
using LockN.Scheduling;
using LockN.Streaming;
using LockN.Transcription;
using LockN.Usage;

namespace LockN.Http;

/// <summary>
/// LockN's one wire convention: every JSON body, event and CLI output is serialised through this context, with
/// snake_case property names and snake_case enum values, so no DTO needs a name attribute of its own.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    Converters = [
        typeof(SnakeCaseEnumConverter<ModelState>),
        typeof(SnakeCaseEnumConverter<BackendState>),
        typeof(SnakeCaseEnumConverter<BackendSource>),
        typeof(SnakeCaseEnumConverter<ModelKind>),
        typeof(SnakeCaseEnumConverter<UsageGrouping>)],
    NumberHandling = JsonNumberHandling.Strict,
    AllowTrailingCommas = false,
    ReadCommentHandling = JsonCommentHandling.Disallow)]
[JsonSerializable(typeof(OpenAiErrorBody))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelCard))]
[JsonSerializable(typeof(JsonTranscription))]
[JsonSerializable(typeof(VerboseTranscription))]
[JsonSerializable(typeof(TranscriptionStreamEvent))]
[JsonSerializable(typeof(ClassificationResult))]
[JsonSerializable(typeof(ApiKeyResource))]
[JsonSerializable(typeof(ObjectList<ApiKeyResource>))]
[JsonSerializable(typeof(ApiKeyResource[]))]
[JsonSerializable(typeof(CreateKeyBody))]
[JsonSerializable(typeof(UsageReport))]
[JsonSerializable(typeof(LockN.Storage.UsageRecord))]
[JsonSerializable(typeof(BackendReport))]
[JsonSerializable(typeof(ObjectList<BackendReport>))]
[JsonSerializable(typeof(AddBackendBody))]
[JsonSerializable(typeof(BackendLog))]
[JsonSerializable(typeof(DeletedBackend))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(LivenessReport))]
[JsonSerializable(typeof(ReadinessReport))]
[JsonSerializable(typeof(SessionEvent))]
[JsonSerializable(typeof(SpeechStarted))]
[JsonSerializable(typeof(SpeechStopped))]
[JsonSerializable(typeof(BufferCommitted))]
[JsonSerializable(typeof(TranscriptDelta))]
[JsonSerializable(typeof(TranscriptCompleted))]
[JsonSerializable(typeof(SoundDetected))]
[JsonSerializable(typeof(ErrorEvent))]
[JsonSerializable(typeof(KeepAlive))]
internal sealed partial class LockNJsonContext : JsonSerializerContext;

/// <summary>Enum values on the wire: <c>NotLoaded</c> is written <c>not_loaded</c>. Each enum on the wire is listed above.</summary>
internal sealed class SnakeCaseEnumConverter<T>() : JsonStringEnumConverter<T>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false)
    where T : struct, Enum;

/// <summary>OpenAI's list envelope: <c>{"object":"list","data":[…]}</c>.</summary>
internal sealed record ObjectList<T>(IReadOnlyList<T> Data, [property: JsonPropertyOrder(-1)] string Object = "list");

internal static class LockNJson
{
    /// <summary>
    /// The context every serialisation goes through. Its encoder leaves quotes and non-ASCII text as they are
    /// (<c>'scopes'</c>, not <c>\u0027scopes\u0027</c>): LockN's JSON is served as application/json, never inlined in HTML.
    /// </summary>
    public static LockNJsonContext Context { get; } = new(new JsonSerializerOptions(LockNJsonContext.Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static JsonSerializerOptions Options => Context.Options;

    /// <summary>Minimal APIs (results, bound bodies, server-sent events) write and read through the same context.</summary>
    public static IServiceCollection AddLockNJson(this IServiceCollection services) =>
        services.ConfigureHttpJsonOptions(http =>
        {
            http.SerializerOptions.PropertyNamingPolicy = Options.PropertyNamingPolicy;
            http.SerializerOptions.NumberHandling = Options.NumberHandling;
            foreach (var converter in Options.Converters)
            {
                http.SerializerOptions.Converters.Add(converter);
            }

            http.SerializerOptions.Encoder = Options.Encoder;
            http.SerializerOptions.TypeInfoResolverChain.Insert(0, Context);
        });

    /// <summary>The wire name of an enum value, as JSON writes it (for logs, CLI tables and pages).</summary>
    public static string WireName<T>(T value)
        where T : struct, Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());
}
