using System.Buffers.Binary;
using System.CommandLine;
using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using LockN.Audio;
using LockN.Hosting;
using LockN.Streaming;

namespace LockN.Cli;

/// <summary>
/// <c>lockn stream FILE|- [--url] [--key] [--speed] ...</c>: a live stream to a running server's
/// GET /v1/audio/stream (docs/streaming.md), its events printed as they arrive. The protocol is <see cref="StreamClient"/>'s.
/// </summary>
internal static class StreamCommand
{
    private const int FileRate = DecodedAudio.SampleRate;

    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "Audio file (wav, mp3, flac, ...), or - for raw pcm_s16le mono on stdin" };
        var url = new Option<string?>("--url") { Description = $"The server's base address (default: the first of Urls, env LOCKN_URLS, else {LockNConfiguration.DefaultUrls})" };
        var key = new Option<string?>("--key") { Description = "API key with the stream scope (default: env LOCKN_API_KEY)" };
        var speed = new Option<double>("--speed") { DefaultValueFactory = _ => 1, Description = "Pace of a file: × real time; 0 = as fast as possible" };
        var model = new Option<string?>("--model") { Description = "Model id (default: the server's whisper-1)" };
        var language = new Option<string?>("--language") { Description = "ISO-639-1 language code; detected when omitted" };
        var classify = new Option<bool>("--classify") { Description = "Also report sound events (YAMNet)" };
        var rate = new Option<int>("--rate") { DefaultValueFactory = _ => 16000, Description = "Sample rate of the raw pcm_s16le mono read from stdin (-)" };
        var noVad = new Option<bool>("--no-vad") { Description = "No voice detection: the whole input is one utterance, committed at the end" };
        var json = new Option<bool>("--json") { Description = "Print each event as the JSON line the server sent" };
        var command = new Command("stream", "Stream audio to a running server and print speech, transcripts and sound events live")
        {
            input, url, key, speed, model, language, classify, rate, noVad, json,
        };
        command.SetAction((parse, cancellationToken) => CommandHost.RunAsync(
            new Dictionary<string, string?>(),
            (services, configuration) => services.AddAudioDecoding(configuration),
            async host =>
            {
                var source = parse.GetValue(input)!;
                var fromStdin = source == "-";
                var sampleRate = fromStdin ? parse.GetValue(rate) : FileRate;
                var pace = parse.GetValue(speed);
                var address = parse.GetValue(url) ?? LockNConfiguration.LocalServerAddress(host.Configuration);
                if (!Uri.TryCreate(address, UriKind.Absolute, out var server) || (server.Scheme != Uri.UriSchemeHttp && server.Scheme != Uri.UriSchemeHttps))
                {
                    return await FailAsync($"--url must be an http:// or https:// address, not '{address}'.", 2);
                }

                if (pace < 0 || double.IsNaN(pace) || double.IsInfinity(pace))
                {
                    return await FailAsync("--speed must be 0 (as fast as possible) or more.", 2);
                }

                if (sampleRate is < InputAudioFormat.MinSampleRate or > InputAudioFormat.MaxSampleRate)
                {
                    return await FailAsync($"--rate must be from {InputAudioFormat.MinSampleRate} to {InputAudioFormat.MaxSampleRate}.", 2);
                }

                byte[]? pcm = null;
                if (!fromStdin)
                {
                    var (audio, problem) = await DecodeAsync(new FileInfo(source), host.Get<AudioDecoder>(), cancellationToken);
                    if (audio is null)
                    {
                        return await FailAsync(problem!, 1);
                    }

                    using (audio)
                    using (var samples = audio.Samples.OpenMemory())
                    {
                        pcm = Pcm16(samples.Memory.Span);
                    }
                }

                var session = new Dictionary<string, object?>
                {
                    ["input_audio_format"] = new { encoding = "pcm_s16le", sample_rate = sampleRate, channels = 1 },
                    ["classify"] = parse.GetValue(classify),
                };
                if (parse.GetValue(model) is { Length: > 0 } modelId)
                {
                    session["model"] = modelId;
                }

                if (parse.GetValue(language) is { Length: > 0 } code)
                {
                    session["language"] = code;
                }

                if (parse.GetValue(noVad))
                {
                    session["turn_detection"] = null;
                }

                var apiKey = parse.GetValue(key) ?? (Environment.GetEnvironmentVariable("LOCKN_API_KEY") is { Length: > 0 } fromEnv ? fromEnv : null);
                try
                {
                    return await StreamAsync(server, apiKey, session, pcm, sampleRate, pace, parse.GetValue(noVad), parse.GetValue(json), cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    await Console.Error.WriteLineAsync("lockn: stream cancelled");
                    return 130;
                }
            }));
        return command;
    }

    private static async Task<int> StreamAsync(Uri server, string? apiKey, Dictionary<string, object?> session, byte[]? pcm, int sampleRate, double speed, bool commit, bool json, CancellationToken cancellationToken)
    {
        StreamClient client;
        try
        {
            client = await StreamClient.ConnectAsync(server, apiKey, cancellationToken);
        }
        catch (WebSocketException ex)
        {
            return await FailAsync($"cannot open a stream at {server}: {Describe(ex, apiKey)}", 1);
        }

        await using (client)
        {
            // Audio goes out only once the server has accepted the settings, so a bad --model or --language is
            // reported before any of it is transcribed with the wrong ones.
            var accepted = new TaskCompletionSource<StreamError?>(TaskCreationOptions.RunContinuationsAsynchronously);
            var printing = PrintEventsAsync(client, json, accepted, cancellationToken);
            try
            {
                await client.UpdateSessionAsync(session, cancellationToken);
            }
            catch (WebSocketException)
            {
                // Closed before it could be sent (1013): the close is read below.
            }

            await Task.WhenAny(accepted.Task, printing);
            if (!accepted.Task.IsCompleted || accepted.Task.Result is not null)
            {
                // Refused (the error is printed) or closed at once, e.g. 1013 when the stream limits are reached.
                try
                {
                    await client.CloseOutputAsync(cancellationToken);
                }
                catch (WebSocketException)
                {
                }

                await printing;
                return await FailAsync(accepted.Task.IsCompleted ? $"the server refused the session settings: {accepted.Task.Result!.Message}" : Closed(client), 1);
            }

            try
            {
                if (pcm is not null)
                {
                    await client.StreamAsync(pcm, sampleRate * 2, speed, cancellationToken);
                }
                else
                {
                    await SendStdinAsync(client, sampleRate, printing, cancellationToken);
                }

                if (commit)
                {
                    await client.CommitAsync(cancellationToken);
                }

                await client.CloseOutputAsync(cancellationToken);
            }
            catch (WebSocketException) when (client.State != WebSocketState.Open)
            {
                // The server ended the stream while audio was going out; its close says why (below).
            }

            await printing;
            // 1000 is also the close after an idle timeout, which is no normal end.
            return client.CloseStatus == WebSocketCloseStatus.NormalClosure && client.CloseStatusDescription != "idle_timeout" ? 0 : await FailAsync(Closed(client), 1);
        }
    }

    /// <summary>Raw PCM from stdin, sent as it comes: the producer sets the pace. Stops early when the server ends the stream.</summary>
    private static async Task SendStdinAsync(StreamClient client, int sampleRate, Task serverDone, CancellationToken cancellationToken)
    {
        await using var stdin = Console.OpenStandardInput();
        var buffer = new byte[Math.Max(2, sampleRate * 2 / 10)]; // up to 100 ms per message
        while (true)
        {
            // A read of a terminal or pipe does not see the token; waiting on it this way lets Ctrl+C (and the
            // server's close) through while a quiet producer blocks the read.
            var reading = stdin.ReadAsync(buffer, cancellationToken).AsTask();
            await Task.WhenAny(reading, serverDone).WaitAsync(cancellationToken);
            if (!reading.IsCompleted)
            {
                return;
            }

            var read = await reading;
            if (read == 0)
            {
                return;
            }

            await client.SendAudioAsync(buffer.AsMemory(0, read), cancellationToken);
        }
    }

    private static async Task PrintEventsAsync(StreamClient client, bool json, TaskCompletionSource<StreamError?> accepted, CancellationToken cancellationToken)
    {
        await foreach (var received in client.ReadEventsAsync(cancellationToken))
        {
            if (!accepted.Task.IsCompleted)
            {
                if (received.Type == SessionEvent.Updated)
                {
                    accepted.TrySetResult(null);
                }
                else if (received.Type == "error")
                {
                    accepted.TrySetResult(received.Body.GetProperty("error").Deserialize<StreamError>());
                }
            }

            var line = json ? received.Body.GetRawText() : Format(received.Type, received.Body);
            if (line is not null)
            {
                await Console.Out.WriteLineAsync(line);
            }
        }
    }

    /// <summary>One readable line per event; null for keepalives.</summary>
    internal static string? Format(string type, JsonElement body)
    {
        string Seconds(string property) => Number(body.GetProperty(property).GetDouble());
        string Tenths(string property) => body.GetProperty(property).GetDouble().ToString("0.0", CultureInfo.InvariantCulture);
        string Milliseconds(string property) => (body.GetProperty(property).GetInt64() / 1000.0).ToString("0.00", CultureInfo.InvariantCulture).PadLeft(6);
        string Text(string property) => body.TryGetProperty(property, out var value) ? value.GetString() ?? "" : "";

        return type switch
        {
            SessionEvent.Created or SessionEvent.Updated => SessionLine(type, body.GetProperty("session")),
            "input_audio_buffer.speech_started" => $"{Milliseconds("audio_start_ms")} s  speech started",
            "input_audio_buffer.speech_stopped" => $"{Milliseconds("audio_end_ms")} s  speech stopped",
            "input_audio_buffer.committed" => $"{Milliseconds("audio_end_ms")} s  committed {Number(body.GetProperty("audio_start_ms").GetInt64() / 1000.0)}–{Number(body.GetProperty("audio_end_ms").GetInt64() / 1000.0)} s",
            "transcript.delta" => $"… partial: {Text("text")}",
            "transcript.completed" => $"[{Tenths("start")}–{Tenths("end")} s] {(Text("text") is { Length: > 0 } text ? text : "(no text)")}",
            "sound" => $"sound {Text("label")} {Seconds("start")}–{Seconds("end")} s (peak {body.GetProperty("peak").GetDouble().ToString("0.00", CultureInfo.InvariantCulture)})",
            "error" => body.TryGetProperty("error", out var error)
                ? $"error {(error.TryGetProperty("code", out var c) ? c.GetString() : "?")}: {(error.TryGetProperty("message", out var m) ? m.GetString() : "")}"
                : $"error: {body.GetRawText()}",
            "keepalive" => null,
            _ => $"{type}: {body.GetRawText()}",
        };
    }

    private static string SessionLine(string type, JsonElement session)
    {
        var settings = session.GetProperty("settings");
        var format = settings.GetProperty("input_audio_format");
        var language = settings.GetProperty("language").GetString() ?? "auto";
        var vad = settings.GetProperty("turn_detection").ValueKind == JsonValueKind.Null ? "off (commit by hand)" : "on";
        var classify = settings.GetProperty("classify").GetBoolean() ? "on" : "off";
        return FormattableString.Invariant(
            $"{(type == SessionEvent.Created ? "session" : "updated")} {session.GetProperty("id").GetString()}: model {settings.GetProperty("model").GetString()}, language {language}, {format.GetProperty("encoding").GetString()} {format.GetProperty("sample_rate").GetInt32()} Hz × {format.GetProperty("channels").GetInt32()}, voice detection {vad}, sound events {classify}");
    }

    private static async Task<(DecodedAudio? Audio, string? Problem)> DecodeAsync(FileInfo file, AudioDecoder decoder, CancellationToken cancellationToken)
    {
        if (!file.Exists)
        {
            return (null, $"{file.FullName}: no such file");
        }

        var decoded = await decoder.DecodeFileAsync(file, cancellationToken);

        return decoded.Succeeded ? (decoded.Audio, null) : (null, $"{file.Name}: {decoded.Message}");
    }

    /// <summary>16 kHz float samples as pcm_s16le bytes.</summary>
    internal static byte[] Pcm16(ReadOnlySpan<float> samples)
    {
        var bytes = new byte[samples.Length * 2];
        for (var i = 0; i < samples.Length; i++)
        {
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(i * 2), (short)Math.Clamp(MathF.Round(samples[i] * 32768f), short.MinValue, short.MaxValue));
        }

        return bytes;
    }

    private static string Describe(WebSocketException ex, string? apiKey)
    {
        // A refused upgrade reads "The server returned status code '401' when status code '101' was expected."
        var hint = ex.Message.Contains("'401'", StringComparison.Ordinal)
            ? apiKey is null ? " (no API key: pass --key or set LOCKN_API_KEY)" : " (the API key was refused)"
            : ex.Message.Contains("'403'", StringComparison.Ordinal) ? " (the API key lacks the stream scope)" : "";
        var cause = ex.InnerException is { } inner && inner.GetBaseException().Message is var detail && !ex.Message.Contains(detail, StringComparison.Ordinal) ? $": {detail}" : "";
        return ex.Message.TrimEnd('.') + cause + hint;
    }

    private static string Closed(StreamClient client) => client.CloseStatus is { } status
        ? $"the server closed the stream: {(int)status}{(client.CloseStatusDescription is { Length: > 0 } reason ? " " + reason : "")}"
        : "the connection was lost.";

    private static string Number(double value) => value.ToString("0.00", CultureInfo.InvariantCulture);

    private static async Task<int> FailAsync(string message, int exitCode)
    {
        await Console.Error.WriteLineAsync($"lockn: {message}");
        return exitCode;
    }
}
