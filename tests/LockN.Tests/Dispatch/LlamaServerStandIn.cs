using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;

namespace LockN.Tests.Dispatch;

/// <summary>
/// A stand-in for llama.cpp's llama-server on 127.0.0.1: N slots (requests beyond them wait inside the server, as
/// llama-server's do), tokens at a fixed rate, SSE and plain answers in OpenAI's shapes, <c>/health</c>,
/// <c>/props</c> and <c>/slots</c>, and a record of every generation: when it got a slot, when each token went out,
/// when it stopped and why. It stops generating when its client connection closes, as llama-server does.
/// </summary>
public sealed class LlamaServerStandIn : IAsyncDisposable
{
    /// <summary>Bodies up to this size are parsed and kept for inspection; bigger ones are only hashed as they arrive.</summary>
    public const int ParsedBodyLimit = 4 * 1024 * 1024;

    private readonly SemaphoreSlim slotGate;
    private readonly ConcurrentQueue<Generation> generations = new();
    private WebApplication? app;
    private int nextId;

    private LlamaServerStandIn(int slots, TimeSpan tokenInterval)
    {
        Slots = slots;
        TokenInterval = tokenInterval;
        slotGate = new SemaphoreSlim(slots, slots);
    }

    public int Slots { get; }

    /// <summary>Time between tokens.</summary>
    public TimeSpan TokenInterval { get; set; }

    /// <summary>What a stream does after <see cref="MisbehaveAfterTokens"/> tokens: what the real server cannot be made to do on cue.</summary>
    public Misbehaviour Misbehaviour { get; set; }

    public int MisbehaveAfterTokens { get; set; } = 3;

    /// <summary>When true, /health answers 503 "Loading model", as llama-server does while it loads.</summary>
    public bool Loading { get; set; }

    public int Port { get; private set; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

    public IReadOnlyCollection<Generation> Generations => generations;

    public int BusySlots => Slots - slotGate.CurrentCount;

    public static async Task<LlamaServerStandIn> StartAsync(int slots = 1, TimeSpan? tokenInterval = null)
    {
        var standIn = new LlamaServerStandIn(slots, tokenInterval ?? TimeSpan.FromMilliseconds(5));
        await standIn.StartOnAsync(0);
        return standIn;
    }

    /// <summary>Goes down: the port refuses connections until <see cref="RestartAsync"/>.</summary>
    public async Task StopAsync()
    {
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
            app = null;
        }
    }

    /// <summary>Comes back on the same port.</summary>
    public Task RestartAsync() => StartOnAsync(Port);

    /// <summary>Waits for the generation that matches, e.g. the one with a given marker in its prompt.</summary>
    public async Task<Generation> WaitForGenerationAsync(Func<Generation, bool> match, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)((timeout ?? TimeSpan.FromSeconds(10)).TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            if (generations.FirstOrDefault(match) is { } found)
            {
                return found;
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException("The stand-in saw no such generation.");
            }

            await Task.Delay(2);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private async Task StartOnAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = null);
        var web = builder.Build();
        web.MapGet("/health", (HttpContext context) => Loading
            ? Results.Json(new { error = new { code = 503, message = "Loading model", type = "unavailable_error" } }, statusCode: 503)
            : Results.Json(new { status = "ok" }));
        web.MapGet("/props", () => Results.Json(new { total_slots = Slots, model_path = "/models/stand-in.gguf" }));
        web.MapGet("/slots", () => Results.Json(Enumerable.Range(0, Slots).Select(i => new { id = i, is_processing = i < BusySlots })));
        web.MapPost("/v1/chat/completions", (HttpContext context) => GenerateAsync(context, Kind.Chat));
        web.MapPost("/v1/completions", (HttpContext context) => GenerateAsync(context, Kind.Completion));
        web.MapPost("/v1/embeddings", (HttpContext context) => GenerateAsync(context, Kind.Embedding));
        await web.StartAsync();
        Port = new Uri(web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        app = web;
    }

    private enum Kind { Chat, Completion, Embedding }

    private async Task GenerateAsync(HttpContext context, Kind kind)
    {
        var aborted = context.RequestAborted;
        var generation = new Generation(Interlocked.Increment(ref nextId), context.Request.Path, Stopwatch.GetTimestamp())
        {
            Authorization = context.Request.Headers.Authorization.ToString(),
        };
        JsonObject? body;
        try
        {
            body = await ReadBodyAsync(context.Request, generation, aborted);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or BadHttpRequestException)
        {
            return;
        }

        generation.Body = body;
        generation.Model = body?["model"]?.GetValue<string>();
        generation.Stream = body?["stream"]?.GetValue<bool>() ?? false;
        generation.IncludeUsageAsked = body?["stream_options"]?["include_usage"]?.GetValue<bool>() ?? false;
        generation.MaxTokens = body?["max_tokens"]?.GetValue<int>() ?? body?["max_completion_tokens"]?.GetValue<int>() ?? 16;
        generation.PromptTokens = Math.Max(1, (int)(generation.BodyBytes / 4));
        generations.Enqueue(generation);

        try
        {
            await slotGate.WaitAsync(aborted);
        }
        catch (OperationCanceledException)
        {
            generation.Finish(StopReason.ClientGone);
            return;
        }

        try
        {
            generation.StartedAt = Stopwatch.GetTimestamp();
            if (kind == Kind.Embedding)
            {
                await context.Response.WriteAsJsonAsync(new
                {
                    @object = "list",
                    model = generation.Model,
                    data = new[] { new { @object = "embedding", index = 0, embedding = new[] { 0.25, -0.5, 0.125 } } },
                    usage = new { prompt_tokens = generation.PromptTokens, total_tokens = generation.PromptTokens },
                }, aborted);
                generation.Finish(StopReason.Completed);
                return;
            }

            if (generation.Stream)
            {
                await StreamAsync(context, kind, generation, aborted);
            }
            else
            {
                await AnswerAsync(context, kind, generation, aborted);
            }

            generation.Finish(StopReason.Completed);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            generation.Finish(StopReason.ClientGone);
        }
        finally
        {
            slotGate.Release();
        }
    }

    private async Task AnswerAsync(HttpContext context, Kind kind, Generation generation, CancellationToken aborted)
    {
        var text = new StringBuilder();
        for (var i = 0; i < generation.MaxTokens; i++)
        {
            await NextTokenAsync(aborted);
            text.Append(Token(generation, i));
            generation.TokensGenerated++;
        }

        generation.Text = text.ToString();
        var usage = new { prompt_tokens = generation.PromptTokens, completion_tokens = generation.TokensGenerated, total_tokens = generation.PromptTokens + generation.TokensGenerated };
        object answer = kind == Kind.Chat
            ? new
            {
                id = $"chatcmpl-{generation.Id}",
                @object = "chat.completion",
                created = 1_700_000_000,
                model = generation.Model,
                choices = new[] { new { index = 0, message = new { role = "assistant", content = generation.Text }, finish_reason = "length" } },
                usage,
            }
            : new
            {
                id = $"cmpl-{generation.Id}",
                @object = "text_completion",
                created = 1_700_000_000,
                model = generation.Model,
                choices = new[] { new { index = 0, text = generation.Text, finish_reason = "length" } },
                usage,
            };
        await context.Response.WriteAsJsonAsync(answer, aborted);
    }

    private async Task StreamAsync(HttpContext context, Kind kind, Generation generation, CancellationToken aborted)
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var id = $"chatcmpl-{generation.Id}";
        var chunk = kind == Kind.Chat ? "chat.completion.chunk" : "text_completion";
        if (kind == Kind.Chat)
        {
            await SendAsync(context, new { id, @object = chunk, created = 1_700_000_000, model = generation.Model, choices = new[] { new { index = 0, delta = new { role = "assistant" }, finish_reason = (string?)null } } }, aborted);
        }

        var text = new StringBuilder();
        for (var i = 0; i < generation.MaxTokens; i++)
        {
            await NextTokenAsync(aborted);
            if (i == MisbehaveAfterTokens && Misbehaviour != Misbehaviour.None)
            {
                await MisbehaveAsync(context, aborted);
                return;
            }

            var token = Token(generation, i);
            object data = kind == Kind.Chat
                ? new { id, @object = chunk, created = 1_700_000_000, model = generation.Model, choices = new[] { new { index = 0, delta = new { content = token }, finish_reason = (string?)null } } }
                : new { id, @object = chunk, created = 1_700_000_000, model = generation.Model, choices = new[] { new { index = 0, text = token, finish_reason = (string?)null } } };
            await SendAsync(context, data, aborted);
            generation.TokenSentAt.Add(Stopwatch.GetTimestamp());
            generation.TokensGenerated++;
            text.Append(token);
        }

        generation.Text = text.ToString();
        object last = kind == Kind.Chat
            ? new { id, @object = chunk, created = 1_700_000_000, model = generation.Model, choices = new[] { new { index = 0, delta = new { }, finish_reason = "length" } } }
            : new { id, @object = chunk, created = 1_700_000_000, model = generation.Model, choices = new[] { new { index = 0, text = "", finish_reason = "length" } } };
        await SendAsync(context, last, aborted);
        if (generation.IncludeUsageAsked)
        {
            await SendAsync(context, new
            {
                id,
                @object = chunk,
                created = 1_700_000_000,
                model = generation.Model,
                choices = Array.Empty<object>(),
                usage = new { prompt_tokens = generation.PromptTokens, completion_tokens = generation.TokensGenerated, total_tokens = generation.PromptTokens + generation.TokensGenerated },
            }, aborted);
        }

        await context.Response.WriteAsync("data: [DONE]\n\n", aborted);
        await context.Response.Body.FlushAsync(aborted);
    }

    private async Task MisbehaveAsync(HttpContext context, CancellationToken aborted)
    {
        switch (Misbehaviour)
        {
            case Misbehaviour.Hang:
                await Task.Delay(Timeout.Infinite, aborted); // alive, connected, silent: until the client goes
                break;
            case Misbehaviour.MalformedEvent:
                await context.Response.WriteAsync("data: {\"choices\":[{\"delta\":\n\n", aborted);
                await context.Response.WriteAsync("data: [DONE]\n\n", aborted);
                break;
            case Misbehaviour.ErrorEvent:
                // What llama-server writes when generation fails mid-stream.
                await context.Response.WriteAsync("error: {\"error\":{\"code\":500,\"message\":\"the stand-in failed mid-answer\",\"type\":\"server_error\"}}\n\n", aborted);
                break;
        }

        await context.Response.Body.FlushAsync(aborted);
    }

    private Task NextTokenAsync(CancellationToken aborted) =>
        TokenInterval > TimeSpan.Zero ? Task.Delay(TokenInterval, aborted) : Task.CompletedTask;

    private static string Token(Generation generation, int i) => $"t{generation.Id}.{i} ";

    private static async Task SendAsync(HttpContext context, object data, CancellationToken aborted)
    {
        await context.Response.WriteAsync("data: " + JsonSerializer.Serialize(data) + "\n\n", aborted);
        await context.Response.Body.FlushAsync(aborted);
    }

    // Small bodies are parsed (the tests look at them); big ones are hashed chunk by chunk, never held.
    private static async Task<JsonObject?> ReadBodyAsync(HttpRequest request, Generation generation, CancellationToken aborted)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var keep = request.ContentLength is <= ParsedBodyLimit;
        using var small = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(buffer, aborted)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            generation.BodyBytes += read;
            if (keep)
            {
                small.Write(buffer, 0, read);
            }
        }

        generation.BodySha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
        return keep ? JsonNode.Parse(small.ToArray()) as JsonObject : null;
    }
}

public enum StopReason { Running, Completed, ClientGone }

public enum Misbehaviour { None, Hang, MalformedEvent, ErrorEvent }

/// <summary>One request the stand-in saw, with Stopwatch timestamps (comparable with the tests' own).</summary>
public sealed class Generation(int id, string path, long receivedAt)
{
    private readonly TaskCompletionSource stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Id { get; } = id;
    public string Path { get; } = path;
    public long ReceivedAt { get; } = receivedAt;
    public string? Authorization { get; init; }
    public JsonObject? Body { get; set; }
    public long BodyBytes { get; set; }
    public string? BodySha256 { get; set; }
    public string? Model { get; set; }
    public bool Stream { get; set; }
    public bool IncludeUsageAsked { get; set; }
    public int MaxTokens { get; set; }
    public int PromptTokens { get; set; }

    /// <summary>When it got one of the server's slots (0 while waiting for one).</summary>
    public long StartedAt { get; set; }

    public List<long> TokenSentAt { get; } = [];
    public int TokensGenerated { get; set; }
    public string? Text { get; set; }
    public long StoppedAt { get; private set; }
    public StopReason Reason { get; private set; }
    public Task Stopped => stopped.Task;

    /// <summary>The text of the first user message (a string or text parts), where tests put a marker.</summary>
    public string Prompt => (Body?["messages"] is JsonArray { Count: > 0 } messages ? messages[0]?["content"] : null) switch
    {
        JsonValue text => text.GetValue<string>(),
        JsonArray parts => string.Join(" ", parts.Select(p => p?["text"]?.GetValue<string>()).OfType<string>()),
        _ => Body?["prompt"]?.ToString() ?? Body?["input"]?.ToString() ?? "",
    };

    public void Finish(StopReason reason)
    {
        Reason = reason;
        StoppedAt = Stopwatch.GetTimestamp();
        stopped.TrySetResult();
    }
}
