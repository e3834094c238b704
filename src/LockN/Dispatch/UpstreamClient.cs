using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

/// <summary>The one HTTP client to the backends: pooled connections, no proxy, no decompression, no overall timeout (deadlines are per request).</summary>
internal sealed class UpstreamClient : IDisposable
{
    public UpstreamClient(IOptions<DispatchOptions> options)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false, // backends are next door; an HTTP_PROXY meant for the internet must not apply
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(options.Value.ConnectTimeoutSeconds),
            // llama-server (cpp-httplib) closes a keep-alive connection idle for 5 s; reusing one just as it does so
            // fails the request, so LockN lets its idle connections go first.
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(4),
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            // An abandoned answer closes its connection at once (that is what stops llama-server generating);
            // draining it for reuse would let the backend go on writing tokens nobody reads.
            MaxResponseDrainSize = 0,
        };
        Http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public HttpClient Http { get; }

    /// <summary>A one-line reason for a failed connection, e.g. "connection refused (127.0.0.1:8081)".</summary>
    public static string Describe(HttpRequestException exception)
    {
        var reason = exception.InnerException is SocketException socket
            ? socket.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused",
                SocketError.ConnectionReset => "connection reset",
                SocketError.HostNotFound or SocketError.NoData => "host not found",
                SocketError.TimedOut => "connection timed out",
                _ => socket.Message,
            }
            : exception.HttpRequestError switch
            {
                HttpRequestError.ConnectionError => "could not connect",
                HttpRequestError.ResponseEnded => "the server closed the connection before answering",
                HttpRequestError.NameResolutionError => "host not found",
                _ => exception.GetBaseException().Message,
            };
        return reason;
    }

    public void Dispose() => Http.Dispose();
}
