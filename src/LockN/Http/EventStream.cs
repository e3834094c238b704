using System.Buffers;
using System.Net.ServerSentEvents;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace LockN.Http;

/// <summary>
/// Writes one server-sent event to a response that is already streaming (e.g. a relayed stream that must end with an
/// error), with the same formatter <c>TypedResults.ServerSentEvents</c> uses for whole streams.
/// </summary>
internal static class EventStream
{
    public static Task WriteAsync<T>(Stream body, T payload, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken) =>
        SseFormatter.WriteAsync(One(new SseItem<T>(payload)), body, (item, buffer) => Serialize(item.Data, typeInfo, buffer), cancellationToken);

    private static void Serialize<T>(T payload, JsonTypeInfo<T> typeInfo, IBufferWriter<byte> buffer)
    {
        using var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = typeInfo.Options.Encoder }); // the context's readable escaping
        JsonSerializer.Serialize(writer, payload, typeInfo);
    }

#pragma warning disable CS1998 // a one-item async sequence
    private static async IAsyncEnumerable<SseItem<T>> One<T>(SseItem<T> item)
#pragma warning restore CS1998
    {
        yield return item;
    }
}
