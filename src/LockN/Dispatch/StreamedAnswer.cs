using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace LockN.Dispatch;

/// <summary>
/// The plain JSON answer for a client that did not ask to stream, assembled from the stream LockN asked the backend
/// for (every request goes upstream as a stream, so that a client going away stops generation at the next token).
/// The result has llama-server's own non-stream shape and field order: <c>choices</c> (with <c>message</c> for chat,
/// <c>text</c> for completions, <c>finish_reason</c>, <c>logprobs</c> when asked), <c>created</c>, <c>model</c>,
/// <c>system_fingerprint</c>, <c>object</c>, <c>usage</c>, <c>id</c>, <c>timings</c>. Tool calls and reasoning deltas
/// are joined the way OpenAI's SDKs join them.
/// </summary>
internal sealed class StreamedAnswer(bool chat)
{
    /// <summary>The most answer text held while assembling; a longer answer should be streamed by its client.</summary>
    public const int MaxAssembledBytes = 64 * 1024 * 1024;

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly SortedDictionary<int, Choice> choices = [];
    private string? id;
    private long? created;
    private string? model;
    private string? systemFingerprint;
    private JsonElement? usage;
    private JsonElement? timings;
    private long heldBytes;

    /// <summary>An error event the backend sent instead of (or in the middle of) its answer: the whole <c>error</c> object.</summary>
    public JsonElement? Error { get; private set; }

    public TokenUsage? Usage => usage is { } u ? TokenUsage.From(u) : null;

    /// <summary>Takes one server-sent event (its raw bytes, blank line included).</summary>
    public void Add(ReadOnlyMemory<byte> sse)
    {
        if (ServerSentEvents.DataRange(sse.Span, out var field) is not { Length: > 0 } range || sse.Span.Slice(range.Start, range.Length).SequenceEqual("[DONE]"u8))
        {
            return;
        }

        var data = sse.Slice(range.Start, range.Length);
        heldBytes += data.Length;
        if (heldBytes > MaxAssembledBytes)
        {
            throw new InvalidDataException($"The answer grew beyond {MaxAssembledBytes / (1024 * 1024)} MB; ask for it with \"stream\": true.");
        }

        // Parsed in place (the event's bytes outlive the document): one event per token, so no copy is made of it.
        using var json = JsonDocument.Parse(data);
        var root = json.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        // llama-server ends a stream that failed with "error: {...}" (or a data event holding "error").
        if (field == "error" || root.TryGetProperty("error", out _))
        {
            Error = root.TryGetProperty("error", out var inner) ? inner.Clone() : root.Clone();
            return;
        }

        // The same on every chunk of a stream: read once.
        id ??= String(root, "id");
        model ??= String(root, "model");
        systemFingerprint ??= String(root, "system_fingerprint");
        created = root.TryGetProperty("created", out var c) && c.TryGetInt64(out var seconds) ? seconds : created;
        if (root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object)
        {
            usage = u.Clone();
        }

        if (root.TryGetProperty("timings", out var t) && t.ValueKind == JsonValueKind.Object)
        {
            timings = t.Clone();
        }

        if (root.TryGetProperty("choices", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var part in list.EnumerateArray())
            {
                var index = part.TryGetProperty("index", out var i) && i.TryGetInt32(out var n) ? n : 0;
                if (!choices.TryGetValue(index, out var choice))
                {
                    choices[index] = choice = new Choice();
                }

                choice.Add(part, chat);
            }
        }
    }

    /// <summary>The assembled answer as UTF-8 JSON.</summary>
    public byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("choices");
            foreach (var (index, choice) in choices)
            {
                choice.Write(writer, index, chat);
            }

            writer.WriteEndArray();
            if (created is { } when)
            {
                writer.WriteNumber("created", when);
            }

            WriteString(writer, "model", model);
            WriteString(writer, "system_fingerprint", systemFingerprint);
            writer.WriteString("object", chat ? "chat.completion" : "text_completion");
            if (usage is { } u)
            {
                writer.WritePropertyName("usage");
                u.WriteTo(writer);
            }

            WriteString(writer, "id", id);
            if (timings is { } t)
            {
                writer.WritePropertyName("timings");
                t.WriteTo(writer);
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static void WriteString(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }

    private sealed class Choice
    {
        private readonly StringBuilder text = new();
        private readonly SortedDictionary<int, ToolCall> toolCalls = [];
        private StringBuilder? reasoning;
        private List<JsonElement>? logprobs;
        private bool sawLogprobsField;
        private bool sawText;
        private string role = "assistant";
        private string? finishReason;

        public void Add(JsonElement part, bool chat)
        {
            if (part.TryGetProperty("finish_reason", out var finish) && finish.ValueKind == JsonValueKind.String)
            {
                finishReason = finish.GetString();
            }

            if (part.TryGetProperty("logprobs", out var lp))
            {
                sawLogprobsField = true;
                if (lp.ValueKind == JsonValueKind.Object && lp.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Array)
                {
                    logprobs ??= [];
                    logprobs.AddRange(content.EnumerateArray().Select(e => e.Clone()));
                }
            }

            if (!chat)
            {
                if (String(part, "text") is { } piece)
                {
                    text.Append(piece);
                    sawText = true;
                }

                return;
            }

            if (!part.TryGetProperty("delta", out var delta) || delta.ValueKind != JsonValueKind.Object)
            {
                return;
            }

            role = String(delta, "role") ?? role;
            if (String(delta, "content") is { } contentPiece)
            {
                text.Append(contentPiece);
                sawText = true;
            }

            if (String(delta, "reasoning_content") is { } thought)
            {
                (reasoning ??= new StringBuilder()).Append(thought);
            }

            if (delta.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray())
                {
                    var index = call.TryGetProperty("index", out var i) && i.TryGetInt32(out var n) ? n : toolCalls.Count;
                    if (!toolCalls.TryGetValue(index, out var parts))
                    {
                        toolCalls[index] = parts = new ToolCall();
                    }

                    parts.Add(call);
                }
            }
        }

        public void Write(Utf8JsonWriter writer, int index, bool chat)
        {
            writer.WriteStartObject();
            if (!chat)
            {
                writer.WriteString("text", text.ToString());
                writer.WriteNumber("index", index);
                WriteLogprobs(writer, nullWhenAbsent: true);
                WriteFinish(writer);
                writer.WriteEndObject();
                return;
            }

            WriteFinish(writer);
            writer.WriteNumber("index", index);
            writer.WriteStartObject("message");
            writer.WriteString("role", role);
            if (sawText || toolCalls.Count == 0)
            {
                writer.WriteString("content", text.ToString());
            }
            else
            {
                writer.WriteNull("content"); // a tool call without text, as llama-server answers it
            }

            if (reasoning is not null)
            {
                writer.WriteString("reasoning_content", reasoning.ToString());
            }

            if (toolCalls.Count > 0)
            {
                writer.WriteStartArray("tool_calls");
                foreach (var call in toolCalls.Values)
                {
                    call.Write(writer);
                }

                writer.WriteEndArray();
            }

            writer.WriteEndObject();
            WriteLogprobs(writer, nullWhenAbsent: false);
            writer.WriteEndObject();
        }

        private void WriteFinish(Utf8JsonWriter writer)
        {
            if (finishReason is null)
            {
                writer.WriteNull("finish_reason");
            }
            else
            {
                writer.WriteString("finish_reason", finishReason);
            }
        }

        private void WriteLogprobs(Utf8JsonWriter writer, bool nullWhenAbsent)
        {
            if (logprobs is not null)
            {
                writer.WriteStartObject("logprobs");
                writer.WriteStartArray("content");
                foreach (var entry in logprobs)
                {
                    entry.WriteTo(writer);
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            else if (nullWhenAbsent && sawLogprobsField)
            {
                writer.WriteNull("logprobs");
            }
        }
    }

    private sealed class ToolCall
    {
        private readonly StringBuilder arguments = new();
        private string? id;
        private string type = "function";
        private string? name;

        public void Add(JsonElement call)
        {
            id = String(call, "id") ?? id;
            type = String(call, "type") ?? type;
            if (call.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object)
            {
                name = String(function, "name") ?? name;
                arguments.Append(String(function, "arguments"));
            }
        }

        public void Write(Utf8JsonWriter writer)
        {
            writer.WriteStartObject();
            writer.WriteString("type", type);
            writer.WriteStartObject("function");
            writer.WriteString("name", name ?? "");
            writer.WriteString("arguments", arguments.ToString());
            writer.WriteEndObject();
            WriteString(writer, "id", id);
            writer.WriteEndObject();
        }
    }
}
