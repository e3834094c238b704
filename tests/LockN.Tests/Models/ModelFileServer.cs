using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;

namespace LockN.Tests.Models;

/// <summary>
/// A real Kestrel server on 127.0.0.1 standing in for the model download location: every GET is answered by the
/// handler the test picks (serve bytes, fail, break off, stall).
/// </summary>
public sealed class ModelFileServer : IAsyncDisposable
{
    private const int ChunkBytes = 64 * 1024;
    private readonly WebApplication app;
    private readonly CancellationTokenSource stopping = new();

    private ModelFileServer(WebApplication app, Uri baseUrl)
    {
        this.app = app;
        BaseUrl = baseUrl;
    }

    public Uri BaseUrl { get; }

    /// <summary>Paths asked for, e.g. <c>/ggml-tiny.en.bin</c>.</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    public static Task<ModelFileServer> ServingAsync(byte[] payload, bool sendLength = true) =>
        StartAsync(async (context, _) =>
        {
            if (sendLength)
            {
                context.Response.ContentLength = payload.Length;
            }

            await WriteChunkedAsync(context, payload, payload.Length);
        });

    public static Task<ModelFileServer> AnsweringAsync(int statusCode) =>
        StartAsync((context, _) =>
        {
            context.Response.StatusCode = statusCode;
            return Task.CompletedTask;
        });

    /// <summary>Announces all of <paramref name="payload"/>, sends the first <paramref name="bytes"/>, then closes the connection.</summary>
    public static Task<ModelFileServer> BreakingOffAfterAsync(byte[] payload, int bytes) =>
        StartAsync(async (context, _) =>
        {
            context.Response.ContentLength = payload.Length;
            await WriteChunkedAsync(context, payload, bytes);
            context.Abort();
        });

    /// <summary>Announces all of <paramref name="payload"/>, sends the first <paramref name="bytes"/>, then sends nothing more.</summary>
    public static Task<ModelFileServer> StallingAfterAsync(byte[] payload, int bytes) =>
        StartAsync(async (context, stopping) =>
        {
            context.Response.ContentLength = payload.Length;
            await WriteChunkedAsync(context, payload, bytes);
            using var either = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
            await Task.Delay(Timeout.Infinite, either.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        });

    /// <summary>An address where nothing listens: a port just bound and released.</summary>
    public static Uri Unreachable()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}/");
    }

    private static async Task<ModelFileServer> StartAsync(Func<HttpContext, CancellationToken, Task> handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        ModelFileServer? server = null;
        app.MapGet("/{**path}", (HttpContext context) =>
        {
            server!.Requests.Enqueue(context.Request.Path.Value ?? "");
            return handler(context, server.stopping.Token);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server = new ModelFileServer(app, new Uri(address.TrimEnd('/') + "/"));
        return server;
    }

    private static async Task WriteChunkedAsync(HttpContext context, byte[] payload, int bytes)
    {
        for (var offset = 0; offset < bytes; offset += ChunkBytes)
        {
            await context.Response.Body.WriteAsync(payload.AsMemory(offset, Math.Min(ChunkBytes, bytes - offset)));
            await context.Response.Body.FlushAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        await app.StopAsync();
        await app.DisposeAsync();
        stopping.Dispose();
    }
}
