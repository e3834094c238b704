using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LockN.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace LockN.Tests.Http;

/// <summary>A server with short Kestrel timeouts, so a test of each one takes seconds.</summary>
public sealed class ShortTimeoutsFixture : LockNServerFixture
{
    public const int MinBytesPerSecond = 100;

    protected override bool WaitsForWhisper => false;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Http:MinRequestBodyBytesPerSecond"] = MinBytesPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Http:RequestBodyGraceSeconds"] = "2",
        ["Http:RequestHeadersTimeoutSeconds"] = "2",
        ["Http:KeepAliveTimeoutSeconds"] = "2",
    };
}

/// <summary>Kestrel's limits as a client meets them: slow bodies, idle connections, bodies too large, clients that leave.</summary>
public class HttpLimitsTests(ShortTimeoutsFixture server, ITestOutputHelper output) : IClassFixture<ShortTimeoutsFixture>
{
    private const string Boundary = "limits";

    [Theory]
    [InlineData("/v1/audio/transcriptions")]
    [InlineData("/v1/audio/classifications")]
    [InlineData("/admin/keys")]
    [InlineData("/v1/chat/completions")]
    public async Task A_body_that_trickles_in_gets_a_408_in_openai_shape_in_lockn_words(string path)
    {
        var multipart = path.StartsWith("/v1/audio", StringComparison.Ordinal);
        var start = multipart
            ? $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF"
            : "{\"name\":\"";
        using var socket = await ConnectAsync();
        await SendAsync(socket, RequestHead(path, multipart ? $"multipart/form-data; boundary={Boundary}" : "application/json", contentLength: 100_000) + start);

        // A byte a second, far under the configured minimum, until the server answers.
        using var answered = new CancellationTokenSource();
        var trickle = Task.Run(async () =>
        {
            while (!answered.IsCancellationRequested)
            {
                await Task.Delay(1000, answered.Token);
                await socket.SendAsync("a"u8.ToArray(), SocketFlags.None, answered.Token);
            }
        });
        var (status, body) = await ReadResponseAsync(socket, onFirstByte: answered.Cancel);
        await answered.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => trickle); // cancelled, or the server closed the connection
        output.WriteLine($"{status} {body}");

        Assert.Equal(408, status);
        var error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.Equal("request_timeout", error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains($"under {ShortTimeoutsFixture.MinBytesPerSecond} bytes per second", message, StringComparison.Ordinal);
        AssertLockNWords(message);
    }

    [Fact]
    public async Task A_json_body_over_the_limit_is_a_413_that_names_no_file_field()
    {
        var body = new ByteArrayContent(new byte[2 * 1024 * 1024]) { Headers = { ContentType = new("application/json") } };
        using (var response = await server.Client.PostAsync("/admin/keys", body))
        {
            var text = await response.Content.ReadAsStringAsync();
            output.WriteLine(text);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
            Assert.Equal("payload_too_large", error.GetProperty("code").GetString());
            Assert.True(!error.TryGetProperty("param", out var param) || param.ValueKind == JsonValueKind.Null, $"param is {param}");
            Assert.Contains(HttpOptions.MaxRequestBodyBytesKey, error.GetProperty("message").GetString(), StringComparison.Ordinal);
            AssertLockNWords(error.GetProperty("message").GetString()!);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_client_that_leaves_mid_upload_is_one_information_line_without_a_stack_trace(bool reset)
    {
        var before = server.Logs.Entries.Count;
        var socket = await ConnectAsync();
        await SendAsync(socket, RequestHead("/v1/audio/transcriptions", $"multipart/form-data; boundary={Boundary}", contentLength: 1_000_000) +
            $"--{Boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF0000WAVE");
        await Task.Delay(300); // the server is reading the body
        if (reset)
        {
            socket.LingerState = new LingerOption(true, 0); // closed with a TCP reset, as a phone losing its network may
        }

        socket.Dispose();

        await LockNServerFixture.WaitForAsync(() => Task.FromResult(server.Logs.Entries.Skip(before).Any(e => e.Message.Contains("went away", StringComparison.Ordinal))));
        await Task.Delay(500); // anything else it would log about this request
        var logged = server.Logs.Entries.Skip(before).Where(e => e.Level >= LogLevel.Information).ToList();
        foreach (var entry in logged)
        {
            output.WriteLine($"{entry.Level} {entry.Category}: {entry.Message} {entry.Exception?.GetType().Name}");
        }

        var gone = Assert.Single(logged, e => e.Message.Contains("went away", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Information, gone.Level);
        Assert.Null(gone.Exception);
        Assert.DoesNotContain(logged, e => e.Level >= LogLevel.Warning || e.Exception is not null);
    }

    [Fact]
    public async Task A_connection_that_never_finishes_its_headers_is_closed_after_the_headers_timeout()
    {
        using var socket = await ConnectAsync();
        var started = Stopwatch.StartNew();
        await SendAsync(socket, "GET /health/live HTTP/1.1\r\nHost: lockn\r\n"); // no blank line: the headers never end
        await ReadUntilClosedAsync(socket);
        output.WriteLine($"closed after {started.Elapsed.TotalSeconds:0.0} s (configured 2 s)");
        Assert.True(started.Elapsed > TimeSpan.FromSeconds(1), "closed before the headers timeout");
    }

    [Fact]
    public async Task An_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout()
    {
        using var socket = await ConnectAsync();
        await SendAsync(socket, "GET /health/live HTTP/1.1\r\nHost: lockn\r\n\r\n");
        var started = Stopwatch.StartNew();
        var answer = await ReadUntilClosedAsync(socket); // Kestrel's default (130 s) would not close it within the 30 s allowed
        output.WriteLine($"closed after {started.Elapsed.TotalSeconds:0.0} s (configured 2 s)");
        Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
        Assert.True(started.Elapsed > TimeSpan.FromSeconds(1), "closed before the keep-alive timeout");
    }

    [Fact]
    public void Every_http_setting_reaches_kestrel()
    {
        var http = server.Services.GetRequiredService<IOptions<HttpOptions>>().Value;
        var limits = server.Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits;
        Assert.Equal(http.MaxConnections, limits.MaxConcurrentConnections);
        Assert.Equal(http.MaxUpgradedConnections, limits.MaxConcurrentUpgradedConnections);
        Assert.Equal(TimeSpan.FromSeconds(2), limits.KeepAliveTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), limits.RequestHeadersTimeout);
        Assert.Equal(ShortTimeoutsFixture.MinBytesPerSecond, limits.MinRequestBodyDataRate!.BytesPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(2), limits.MinRequestBodyDataRate.GracePeriod);
        Assert.Equal(http.MinResponseBytesPerSecond, limits.MinResponseDataRate!.BytesPerSecond);
        Assert.Equal(http.MaxRequestBodyBytes, limits.MaxRequestBodySize);
    }

    private static void AssertLockNWords(string message)
    {
        foreach (var word in new[] { "MinRequestBodyDataRate", "MaxRequestBodySize", "Kestrel", "Exception", "System.", "Microsoft." })
        {
            Assert.DoesNotContain(word, message, StringComparison.Ordinal);
        }
    }

    private string RequestHead(string path, string contentType, long contentLength) =>
        $"POST {path} HTTP/1.1\r\nHost: lockn\r\nAuthorization: Bearer {server.AdminKey}\r\nContent-Type: {contentType}\r\nContent-Length: {contentLength}\r\n\r\n";

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port);
        return socket;
    }

    private static async Task SendAsync(Socket socket, string text) => await socket.SendAsync(Encoding.ASCII.GetBytes(text), SocketFlags.None);

    /// <summary>Everything the server sends until it closes the connection; fails the test when it is still open after 30 s.</summary>
    private static async Task<string> ReadUntilClosedAsync(Socket socket, Action? onFirstByte = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var received = new MemoryStream();
        var buffer = new byte[8192];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            {
                received.Write(buffer, 0, read);
                onFirstByte?.Invoke();
            }
        }
        catch (SocketException)
        {
            // a reset ends the connection too
        }
        catch (OperationCanceledException)
        {
            Assert.Fail("the server did not close the connection within 30 s");
        }

        return Encoding.UTF8.GetString(received.ToArray());
    }

    private static async Task<(int Status, string Body)> ReadResponseAsync(Socket socket, Action onFirstByte)
    {
        var text = await ReadUntilClosedAsync(socket, onFirstByte);
        Assert.StartsWith("HTTP/1.1 ", text, StringComparison.Ordinal);
        var status = int.Parse(text.AsSpan(9, 3), provider: System.Globalization.CultureInfo.InvariantCulture);
        var body = text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
        return (status, body.Contains('{', StringComparison.Ordinal) ? body[body.IndexOf('{', StringComparison.Ordinal)..(body.LastIndexOf('}') + 1)] : body);
    }
}
