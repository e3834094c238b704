using System.Net.WebSockets;
using LockN.Http;
using LockN.Keys;
using LockN.Scheduling;
using LockN.Usage;
using Microsoft.Extensions.Options;

namespace LockN.Streaming;

/// <summary>GET /v1/audio/stream: a WebSocket of live audio in, voice activity, transcripts and sound events out.</summary>
internal static partial class StreamingApi
{
    /// <summary>The subprotocol a browser offers to be answered with; its key travels as <c>lockn-api-key.KEY</c>.</summary>
    public const string SubProtocol = "lockn";

    public static IEndpointRouteBuilder MapStreamingApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/audio/stream", StreamAsync);
        return app;
    }

    private static async Task<IResult> StreamAsync(
        HttpContext context,
        AudioPipelineFactory pipelines,
        StreamLimits limits,
        IOptions<StreamingOptions> options,
        TimeProvider time,
        ILoggerFactory loggers)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            return ApiError.BadRequest("This endpoint speaks WebSocket: connect with ws:// or wss:// (see docs/streaming.md).", code: "websocket_required").ToResult();
        }

        var usage = UsageFeature.For(context);
        usage.Model = pipelines.DefaultModelId;
        if (await pipelines.CheckReadyAsync(context.RequestAborted) is { } notReady)
        {
            return notReady.ToResult();
        }

        var offered = context.WebSockets.WebSocketRequestedProtocols;
        using var socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            // Never echo a protocol that carries a key.
            SubProtocol = offered.Contains(SubProtocol) ? SubProtocol : null,
            KeepAliveInterval = TimeSpan.FromSeconds(options.Value.KeepAliveSeconds),
        });

        var (lease, refusal) = limits.TryEnter(context.User.FindFirst(ApiKeyClaims.KeyId)?.Value);
        if (lease is null || refusal is not null)
        {
            refusal ??= "No stream can be opened now.";
            // 1013 "try again later", with the reason (at most 123 bytes in a close frame).
            await socket.CloseOutputAsync((WebSocketCloseStatus)1013, refusal[..Math.Min(refusal.Length, 120)], CancellationToken.None);
            return Results.Empty;
        }

        using (lease!)
        {
            await using var pipeline = pipelines.Create(context.RequestAborted, SlotHolder.Of(context));
            var session = new StreamSession(socket, pipeline, options.Value, time, loggers.CreateLogger("LockN.Streaming"));
            try
            {
                await session.RunAsync(context.RequestAborted);
            }
            finally
            {
                usage.AudioSeconds = pipeline.AudioSeconds;
                usage.Model = pipeline.ModelId;
                usage.ClientGone = session.ClientVanished;
            }
        }

        return Results.Empty;
    }
}
