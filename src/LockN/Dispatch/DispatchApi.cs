using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using LockN.Http;
using LockN.Scheduling;
using LockN.Usage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

/// <summary>
/// POST /v1/chat/completions, /v1/completions and /v1/embeddings (scope <c>chat</c>), forwarded to the backend
/// serving the requested model. The order of things is the point: the body is in before a slot is asked for;
/// a slot is held only while the backend works; the client going away or the deadline passing aborts the
/// upstream request at once, which frees the backend's slot and hands LockN's slot to the next in line.
/// </summary>
internal static partial class DispatchApi
{
    /// <summary>A client may shorten its backend's deadline with this header (seconds, e.g. 2.5).</summary>
    public const string DeadlineHeader = "X-LockN-Deadline-Seconds";

    public static IEndpointRouteBuilder MapDispatchApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions", Forward("v1/chat/completions", canStream: true)).DisableAntiforgery();
        app.MapPost("/v1/completions", Forward("v1/completions", canStream: true)).DisableAntiforgery();
        app.MapPost("/v1/embeddings", Forward("v1/embeddings", canStream: false)).DisableAntiforgery();
        return app;
    }

    // A Delegate rather than a RequestDelegate, so the returned IResult is written.
    private static Delegate Forward(string path, bool canStream) =>
        ([AsParameters] DispatchServices services) => ForwardAsync(services, path, canStream);

    /// <summary>What forwarding needs, bound by the framework.</summary>
    internal readonly record struct DispatchServices(
        HttpContext Context, IOptions<DispatchOptions> Options, BackendRegistry Registry, UpstreamClient Upstream, TimeProvider Time, ILogger<BackendRegistry> Logger);

    private static async Task<IResult> ForwardAsync(DispatchServices services, string path, bool canStream)
    {
        var (context, options, registry, time, logger) = (services.Context, services.Options.Value, services.Registry, services.Time, services.Logger);
        var arrived = time.GetTimestamp();
        var clientGone = context.RequestAborted;

        if (!IsJson(context.Request.ContentType))
        {
            return ApiError.UnsupportedMedia("Send the request body as JSON with 'Content-Type: application/json'.", param: null).ToResult();
        }

        var (askedDeadline, deadlineError) = ReadDeadlineHeader(context.Request);
        if (deadlineError is not null)
        {
            return deadlineError.ToResult();
        }

        await using var spool = new RequestSpool(options.MemorySpoolBytes, context.Request.ContentLength);
        var scanner = new JsonObjectScanner(DispatchRequest.ScannedProperties, maxDepth: options.MaxJsonDepth);
        if (await ReceiveAsync(context, spool, scanner, options.MaxRequestBytes) is { } receiveError)
        {
            return receiveError.ToResult();
        }

        if (clientGone.IsCancellationRequested)
        {
            return Results.Empty;
        }

        var (request, requestError) = DispatchRequest.From(scanner, canStream);
        if (requestError is not null)
        {
            return requestError.ToResult();
        }

        Backend? backend;
        ApiError? routeError;
        try
        {
            (backend, routeError) = await registry.SelectAsync(request!.Model, clientGone);
        }
        catch (OperationCanceledException)
        {
            return Results.Empty;
        }

        if (routeError is not null)
        {
            return routeError.ToResult();
        }

        using var inUse = backend!.Use(); // from here until the answer ends, this backend has work and is not unloaded
        var usage = UsageFeature.For(context);
        usage.Model = backend.UpstreamModel(request.Model);

        // The deadline counts from the request's arrival: waiting in line, a model server loading and generating all spend it.
        var deadline = askedDeadline is { } asked && asked < backend.Deadline.TotalSeconds
            ? TimeSpan.FromSeconds(asked)
            : backend.Deadline;
        using var deadlineSource = new CancellationTokenSource(Max(deadline - time.GetElapsedTime(arrived), TimeSpan.FromMilliseconds(1)), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(clientGone, deadlineSource.Token);
        var cancellationToken = linked.Token;

        Admission admission;
        try
        {
            admission = await backend.Scheduler.AcquireAsync(Scheduling.SlotHolder.Of(services.Context), cancellationToken);
        }
        catch (OperationCanceledException) when (!clientGone.IsCancellationRequested)
        {
            return ApiError.DeadlineExceeded(backend.ModelId, time.GetElapsedTime(arrived)).ToResult();
        }
        catch (OperationCanceledException)
        {
            return Results.Empty;
        }

        if (admission.Refusal(backend.ModelId) is { } refused)
        {
            return refused.ToResult();
        }

        // A managed server that is not running is started now, its request holding its place: the model's bounded
        // queue is where requests wait while it loads (and while room is made for it), and the deadline runs on.
        using var lease = admission.Lease;
        if (await WaitForServerAsync(registry, backend, time, arrived, cancellationToken, clientGone) is { } notReady)
        {
            return notReady;
        }

        // The stall watchdog: no event from the backend for StallSeconds ends the request (and restarts a managed server).
        using var progress = new GenerationProgress(TimeSpan.FromSeconds(options.StallSeconds), time);
        using var upstreamGone = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, progress.Stalled);
        var upstreamToken = upstreamGone.Token;
        var ended = new RequestEnd(context, backend, logger, progress, clientGone);

        var sent = time.GetTimestamp();
        HttpResponseMessage? response = null;
        for (var attempt = 0; response is null; attempt++)
        {
            if (backend.BaseUrl is not { } baseUrl)
            {
                return ApiError.Unavailable($"Backend '{backend.Name}' for model '{backend.ModelId}' stopped before the request could be sent. Retry later.", "backend_unavailable").ToResult();
            }

            using var upstreamRequest = UpstreamRequest(baseUrl, path, spool, request, backend);
            try
            {
                response = await services.Upstream.Http.SendAsync(upstreamRequest, HttpCompletionOption.ResponseHeadersRead, upstreamToken);
            }
            catch (OperationCanceledException)
            {
                return ended.Cancelled(time.GetElapsedTime(sent));
            }
            catch (HttpRequestException ex)
            {
                if (attempt == 0 && ex.HttpRequestError == HttpRequestError.ResponseEnded && (backend.Server is null || !await backend.Server.ExitedAsync(upstreamToken)))
                {
                    // The server closed a kept-alive connection as the request went out on it, without a byte of
                    // answer: nothing was generated, and the request goes again once, on a new connection.
                    LogResent(logger, backend.Name, UpstreamClient.Describe(ex));
                    continue;
                }

                if (attempt == 0 && backend.Server is { } server && await server.ExitedAsync(upstreamToken))
                {
                    // A managed server died just before this request reached it: nothing was generated, so the request
                    // waits (within its deadline) for the server's restart and is sent again, once.
                    LogResent(logger, backend.Name, UpstreamClient.Describe(ex));
                    if (await WaitForServerAsync(registry, backend, time, arrived, cancellationToken, clientGone) is { } restartError)
                    {
                        return restartError;
                    }

                    continue;
                }

                var problem = UpstreamClient.Describe(ex);
                if (backend.MarkUnhealthy(problem, fromCheck: false))
                {
                    LogMarkedDown(logger, backend.Name, problem);
                }

                return ApiError.Unavailable($"Backend '{backend.Name}' for model '{backend.ModelId}' is unavailable: {problem}. Retry later.", "backend_unavailable").ToResult();
            }
        }

        using (response)
        {
            backend.RecordFirstByte(time.GetElapsedTime(sent));
            var events = response.IsSuccessStatusCode && response.Content.Headers.ContentType?.MediaType == "text/event-stream";
            if (events && !request.Stream)
            {
                return await AssembleAsync(response, path, usage, progress, ended, () => time.GetElapsedTime(sent), upstreamToken);
            }

            context.Response.StatusCode = (int)response.StatusCode;
            context.Response.ContentType = response.Content.Headers.ContentType?.ToString() ?? "application/json";
            if (events)
            {
                context.Response.Headers.CacheControl = "no-cache";
                context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            }
            else if (response.Content.Headers.ContentLength is { } length)
            {
                context.Response.ContentLength = length;
            }

            try
            {
                await using var body = await response.Content.ReadAsStreamAsync(upstreamToken);
                var tokens = events
                    ? await ResponseRelay.RelayEventsAsync(body, context.Response.Body, request.ClientWantsUsage, backend.Name, progress, upstreamToken)
                    : await ResponseRelay.RelayBodyAsync(body, context.Response.Body, upstreamToken);
                if (tokens is { } counted)
                {
                    usage.TokensIn = counted.In;
                    usage.TokensOut = counted.Out;
                }

                progress.Report(backend);
            }
            catch (OperationCanceledException)
            {
                return ended.Cancelled(time.GetElapsedTime(sent), started: true, events);
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException or InvalidDataException)
            {
                // The backend broke off mid-answer: a stream gets an error event, a plain body cannot be mended.
                LogBrokenOff(logger, backend.Name, ex.GetBaseException().Message);
                if (events && !clientGone.IsCancellationRequested)
                {
                    await WriteErrorEventAsync(context, BrokenOff(backend, ex));
                }
                else
                {
                    context.Abort();
                }
            }
        }

        return Results.Empty;
    }

    private static HttpRequestMessage UpstreamRequest(Uri baseUrl, string path, RequestSpool spool, DispatchRequest request, Backend backend)
    {
        var upstreamRequest = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUrl, path))
        {
            Content = new SpooledJsonContent(spool, request.EditsFor(backend)),
            Version = HttpVersion.Version11,
        };
        upstreamRequest.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(request.StreamsUpstream ? "text/event-stream" : "application/json"));
        if (backend.Options.ApiKey is { Length: > 0 } backendKey)
        {
            upstreamRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", backendKey); // never the client's LockN key
        }

        return upstreamRequest;
    }

    /// <summary>
    /// A non-streaming client's answer: the upstream stream read to its end and written as one JSON body. Nothing is
    /// sent before the end, so every failure on the way (backend gone, deadline, stall) is an ordinary error status.
    /// </summary>
    private static async Task<IResult> AssembleAsync(HttpResponseMessage response, string path, UsageFeature usage, GenerationProgress progress, RequestEnd ended, Func<TimeSpan> sinceSent, CancellationToken upstreamToken)
    {
        var backend = ended.Backend;
        StreamedAnswer answer;
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(upstreamToken);
            answer = await ResponseRelay.AssembleAsync(body, chat: path.EndsWith("chat/completions", StringComparison.Ordinal), progress, upstreamToken);
        }
        catch (OperationCanceledException)
        {
            return ended.Cancelled(sinceSent());
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or InvalidDataException or JsonException)
        {
            LogBrokenOff(ended.Logger, backend.Name, ex.GetBaseException().Message);
            return BrokenOff(backend, ex).ToResult();
        }

        progress.Report(backend);
        if (answer.Usage is { } counted)
        {
            usage.TokensIn = counted.In;
            usage.TokensOut = counted.Out;
        }

        if (answer.Error is { } error)
        {
            return ResponseRelay.BackendError(error, backend.Name).ToResult();
        }

        return Results.Bytes(answer.ToJson(), "application/json");
    }

    /// <summary>
    /// Readies a managed server, holding the slot and within the deadline: an on-demand one that is stopped is started
    /// (after room is made for it), and one that is starting (on demand, or after a crash) is waited for; one an idle
    /// unload stopped just now is started again, once. Null when it is ready, or for a URL backend.
    /// </summary>
    private static async Task<IResult?> WaitForServerAsync(BackendRegistry registry, Backend backend, TimeProvider time, long arrived, CancellationToken cancellationToken, CancellationToken clientGone)
    {
        if (backend.Server is not { } server)
        {
            return null;
        }

        try
        {
            for (var attempt = 0; ; attempt++)
            {
                if (await registry.EnsureStartedAsync(backend, cancellationToken) is { } startError)
                {
                    return startError.ToResult();
                }

                var notReady = server.State switch
                {
                    ManagedServerState.Failed => ManagedLlamaServer.FailedForClients(backend.Name),
                    ManagedServerState.Stopped => $"backend '{backend.Name}' was stopped ({server.LastExit}).",
                    _ => await server.WaitReadyAsync(cancellationToken),
                };
                if (notReady is null)
                {
                    return null;
                }

                if (attempt > 0 || server.State != ManagedServerState.Stopped || !server.Options.OnDemand || backend.Draining)
                {
                    return ApiError.Unavailable($"Model '{backend.ModelId}' cannot be served: {notReady}", "backend_unavailable").ToResult();
                }
            }
        }
        catch (OperationCanceledException) when (!clientGone.IsCancellationRequested)
        {
            return ApiError.Unavailable(
                $"Model '{backend.ModelId}' was still loading (or waiting for room to load) on backend '{backend.Name}' when the request's deadline passed ({time.GetElapsedTime(arrived).TotalSeconds:0.#} s). Retry later.",
                "deadline_exceeded").ToResult();
        }
        catch (OperationCanceledException)
        {
            return Results.Empty;
        }
    }

    private static ApiError BrokenOff(Backend backend, Exception ex) =>
        ApiError.Unavailable($"Backend '{backend.Name}' broke off its answer: {UpstreamProblem(ex)}. Retry later.", "backend_error");

    private static string UpstreamProblem(Exception ex) => ex switch
    {
        HttpRequestException http => UpstreamClient.Describe(http),
        InvalidDataException or JsonException => "it sent a malformed answer",
        _ when ex.GetBaseException() is System.Net.Sockets.SocketException => "the connection was reset",
        _ => "the connection closed mid-answer",
    };

    /// <summary>How a request that did not finish ends, by what ended it: the client leaving, the deadline, or a stall.</summary>
    private sealed record RequestEnd(HttpContext Context, Backend Backend, ILogger Logger, GenerationProgress Progress, CancellationToken ClientGone)
    {
        /// <summary>
        /// The upstream request was cancelled. Disposing the response (the caller's using) closes the connection,
        /// which is how llama-server learns to stop generating: at its next token, since every request streams.
        /// </summary>
        public IResult Cancelled(TimeSpan sinceSent, bool started = false, bool events = false)
        {
            var elapsed = sinceSent.TotalMilliseconds;
            Progress.Report(Backend);
            if (ClientGone.IsCancellationRequested)
            {
                LogClientGone(Logger, Backend.Name, elapsed);
                return Results.Empty;
            }

            ApiError error;
            if (Progress.Stalled.IsCancellationRequested)
            {
                var seconds = Progress.StallAfter.TotalSeconds;
                LogStalled(Logger, Backend.Name, seconds);
                error = ApiError.Unavailable(
                    $"Backend '{Backend.Name}' stalled: model '{Backend.ModelId}' produced no token for {seconds:0.#} s (Dispatch:StallSeconds). The request was cancelled and the backend {(Backend.Server is null ? "marked unhealthy" : "restarted")}.",
                    "backend_stalled");
                Stalled();
            }
            else
            {
                LogDeadline(Logger, Backend.Name, elapsed);
                error = ApiError.Unavailable(
                    $"Model '{Backend.ModelId}' did not finish within the request's deadline; its work on backend '{Backend.Name}' was cancelled.",
                    "deadline_exceeded");
            }

            if (!started)
            {
                return error.ToResult();
            }

            if (events)
            {
                // Headers are gone; an OpenAI-style error event tells the client why the stream ends here.
                return new DeferredResult(ctx => WriteErrorEventAsync(ctx, error));
            }

            Context.Abort();
            return Results.Empty;
        }

        // A stuck server holds its slot for nobody: a managed one is killed and started again, a URL one is taken out of rotation.
        private void Stalled()
        {
            var reason = $"stalled: no token for {Progress.StallAfter.TotalSeconds:0.#} s";
            if (Backend.Server is { } server)
            {
                _ = server.RestartAsync(reason, graceful: false, CancellationToken.None);
            }
            else if (Backend.MarkUnhealthy(reason, fromCheck: false))
            {
                LogMarkedDown(Logger, Backend.Name, reason);
            }
        }
    }

    private static async Task WriteErrorEventAsync(HttpContext context, ApiError error)
    {
        try
        {
            await EventStream.WriteAsync(context.Response.Body, error.ToBody(), LockNJson.Context.OpenAiErrorBody, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            // the client left as well
        }
    }

    /// <summary>Reads the body into the spool, scanning it as it comes; an error for a body too large, cut off or not valid JSON.</summary>
    private static async Task<ApiError?> ReceiveAsync(HttpContext context, RequestSpool spool, JsonObjectScanner scanner, long maxBytes)
    {
        if (RequestBodyLimit.Apply(context, maxBytes, param: null, LimitSetting) is { } tooLarge)
        {
            return tooLarge;
        }

        var reader = context.Request.BodyReader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(context.RequestAborted);
                foreach (var segment in result.Buffer)
                {
                    scanner.Feed(segment.Span);
                    if (scanner.Failure is not null)
                    {
                        break;
                    }

                    await spool.WriteAsync(segment, context.RequestAborted);
                }

                reader.AdvanceTo(result.Buffer.End);
                if (scanner.Failure is not null)
                {
                    break; // a refused body is answered at once, its rest neither read nor kept
                }

                if (spool.Length > maxBytes)
                {
                    return RequestBodyLimit.TooLarge(null, maxBytes, param: null, LimitSetting); // chunked bodies have no Content-Length to refuse up front
                }

                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            if (await ClientAbort.IsClientGoneAsync(context, ex))
            {
                throw; // gone mid-upload: logged once by the abort logging
            }

            // The body was cut short (e.g. a broken chunk) or too slow.
            return ex is BadHttpRequestException bad ? RequestBodyFailure.Describe(context, bad, limitSetting: LimitSetting)
                : ApiError.BadRequest("The request body could not be read to its end.", code: "invalid_body");
        }

        scanner.Complete();
        return scanner.Failure is { } failure ? DispatchRequest.Refusal(failure) : null;
    }

    private const string LimitSetting = $"{DispatchOptions.Section}:{nameof(DispatchOptions.MaxRequestBytes)}";

    private static (double? Seconds, ApiError? Error) ReadDeadlineHeader(HttpRequest request)
    {
        if (!request.Headers.TryGetValue(DeadlineHeader, out var values))
        {
            return (null, null);
        }

        return double.TryParse(values.ToString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds > 0 && double.IsFinite(seconds)
            ? (seconds, null)
            : (null, ApiError.BadRequest($"{DeadlineHeader} must be a positive number of seconds (got '{values}').", param: null, code: "invalid_deadline"));
    }

    private static bool IsJson(string? contentType) =>
        contentType is not null && MediaTypeHeaderValue.TryParse(contentType, out var parsed)
        && (parsed.MediaType == "application/json" || (parsed.MediaType?.EndsWith("+json", StringComparison.OrdinalIgnoreCase) ?? false));

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private sealed class DeferredResult(Func<HttpContext, Task> write) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext) => write(httpContext);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Client went away; request to backend {Backend} aborted after {ElapsedMs:0} ms")]
    private static partial void LogClientGone(ILogger logger, string backend, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Deadline passed; request to backend {Backend} aborted after {ElapsedMs:0} ms")]
    private static partial void LogDeadline(ILogger logger, string backend, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backend {Backend} did not answer a request ({Problem}); it is sent again once")]
    private static partial void LogResent(ILogger logger, string backend, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backend {Backend} stalled: no token for {Seconds} s; request cancelled")]
    private static partial void LogStalled(ILogger logger, string backend, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backend {Backend} marked unhealthy after a failed request: {Problem}")]
    private static partial void LogMarkedDown(ILogger logger, string backend, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Backend {Backend} broke off its answer: {Problem}")]
    private static partial void LogBrokenOff(ILogger logger, string backend, string problem);
}
