using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LockN.Http;

namespace LockN.Dispatch;

/// <summary>
/// What LockN needs to know of a chat, completion or embedding request (model, stream, stream_options), read from
/// its top-level properties by <see cref="JsonObjectScanner"/>, and the few edits made on its way to the backend.
/// </summary>
internal sealed class DispatchRequest
{
    /// <summary>The top-level properties the scanner keeps; the rest of the body passes through untouched.</summary>
    public static readonly IReadOnlyCollection<string> ScannedProperties = ["model", "stream", "stream_options"];

    private static readonly byte[] IncludeUsage = """{"include_usage":true}"""u8.ToArray();

    private DispatchRequest(string model, bool canStream, bool stream, bool clientWantsUsage, ScannedValue? modelValue, ScannedValue? streamValue, ScannedValue? streamOptions, long closingBrace)
    {
        Model = model;
        StreamsUpstream = canStream;
        Stream = stream;
        ClientWantsUsage = clientWantsUsage;
        this.modelValue = modelValue;
        this.streamValue = streamValue;
        this.streamOptions = streamOptions;
        this.closingBrace = closingBrace;
    }

    private readonly ScannedValue? modelValue;
    private readonly ScannedValue? streamValue;
    private readonly ScannedValue? streamOptions;
    private readonly long closingBrace;

    public string Model { get; }

    /// <summary>The client asked for a stream.</summary>
    public bool Stream { get; }

    /// <summary>
    /// Chat and completion requests always go to the backend as streams: llama-server notices a client gone only when
    /// it writes to it, which a stream does at every token and a plain answer only at its end.
    /// </summary>
    public bool StreamsUpstream { get; }

    /// <summary>The client asked for <c>stream_options.include_usage</c> itself, so the usage chunk is its to see.</summary>
    public bool ClientWantsUsage { get; }

    public static (DispatchRequest? Request, ApiError? Error) From(JsonObjectScanner scanner, bool canStream)
    {
        if (scanner.Failure is { } failure)
        {
            return (null, Refusal(failure));
        }

        if (!scanner.Values.TryGetValue("model", out var model))
        {
            return (null, ApiError.BadRequest("You must provide a model parameter.", "model", "missing_model"));
        }

        if (ReadString(model) is not { Length: > 0 } modelId)
        {
            return (null, ApiError.BadRequest("'model' must be a non-empty string naming a model from GET /v1/models.", "model", "invalid_type"));
        }

        var stream = false;
        if (scanner.Values.TryGetValue("stream", out var streamValue))
        {
            var text = streamValue.Bytes is { } bytes ? Encoding.UTF8.GetString(bytes) : "";
            if (text is not ("true" or "false" or "null"))
            {
                return (null, ApiError.BadRequest("'stream' must be true or false.", "stream", "invalid_type"));
            }

            stream = canStream && text == "true";
        }

        var clientWantsUsage = false;
        scanner.Values.TryGetValue("stream_options", out var options);
        if (stream && options is not null)
        {
            var parsed = Parse(options);
            if (parsed is not (null or JsonObject))
            {
                return (null, ApiError.BadRequest("'stream_options' must be an object such as {\"include_usage\": true}.", "stream_options", "invalid_type"));
            }

            clientWantsUsage = parsed is JsonObject o && o["include_usage"] is JsonValue v && v.TryGetValue<bool>(out var include) && include;
        }

        scanner.Values.TryGetValue("stream", out var streamField);
        return (new DispatchRequest(modelId, canStream, stream, clientWantsUsage, model, streamField, options, scanner.ClosingBrace), null);
    }

    /// <summary>The one answer to a body the scanner refused: 400, saying what is wrong and at which byte.</summary>
    internal static ApiError Refusal(JsonScanFailure failure) =>
        ApiError.BadRequest(failure.Message, param: null, code: failure.Problem switch
        {
            JsonScanProblem.TooDeep => "json_too_deep",
            JsonScanProblem.InvalidUtf8 => "invalid_utf8",
            _ => "invalid_json",
        });

    /// <summary>
    /// The edits for <paramref name="backend"/>: its own model id in place of an alias; <c>"stream": true</c> for a
    /// request that streams upstream though its client did not ask to; and <c>stream_options.include_usage</c> so the
    /// last chunk carries the token counts for the usage ledger.
    /// </summary>
    public IReadOnlyList<BodyEdit> EditsFor(Backend backend)
    {
        var edits = new List<BodyEdit>(3);
        var upstreamModel = backend.UpstreamModel(Model);
        if (!string.Equals(Model, upstreamModel, StringComparison.Ordinal) && modelValue is not null)
        {
            edits.Add(new BodyEdit(modelValue.Start, modelValue.Length, JsonSerializer.SerializeToUtf8Bytes(upstreamModel)));
        }

        if (!StreamsUpstream)
        {
            return edits;
        }

        if (!Stream)
        {
            edits.Add(streamValue is null
                ? new BodyEdit(closingBrace, 0, [.. ","u8, .. "\"stream\":true"u8])
                : new BodyEdit(streamValue.Start, streamValue.Length, [.. "true"u8]));
        }

        if (!ClientWantsUsage)
        {
            if (streamOptions is null)
            {
                edits.Add(new BodyEdit(closingBrace, 0, [.. ","u8, .. "\"stream_options\":"u8, .. IncludeUsage]));
            }
            else
            {
                // A plain request's stream_options meant nothing to its client; a stream's are kept with usage added.
                var merged = (Stream ? Parse(streamOptions) as JsonObject : null) ?? [];
                merged["include_usage"] = true;
                edits.Add(new BodyEdit(streamOptions.Start, streamOptions.Length, JsonSerializer.SerializeToUtf8Bytes(merged)));
            }
        }

        return edits;
    }

    private static string? ReadString(ScannedValue value)
    {
        if (value.Bytes is not { } bytes)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<JsonNode>(bytes) is JsonValue v && v.TryGetValue<string>(out var s) ? s.Trim() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static JsonNode? Parse(ScannedValue value)
    {
        if (value.Bytes is not { } bytes)
        {
            return JsonValue.Create("too long");
        }

        try
        {
            return JsonNode.Parse(bytes);
        }
        catch (JsonException)
        {
            return JsonValue.Create("invalid");
        }
    }
}
