using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using LockN.Streaming;
using LockN.Tests.Classification;

namespace LockN.Tests.Streaming;

public sealed class StreamingServerFixture : LockNServerFixture
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Transcription:SpareWorkers"] = "1",
    };

    public async Task<StreamClient> ConnectAsync(string? key = null) =>
        await StreamClient.ConnectAsync(BaseAddress, key ?? AdminKey, CancellationToken.None);

    /// <summary>Streams PCM after a session.update, closes our side and collects every event until the server closes.</summary>
    public async Task<(List<ReceivedStreamEvent> Events, StreamClient Client)> StreamAsync(object session, byte[] pcm, int bytesPerSecond, double speed, int frameBytes = 2)
    {
        var client = await ConnectAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var events = new List<ReceivedStreamEvent>();
        var reading = Task.Run(async () =>
        {
            await foreach (var received in client.ReadEventsAsync(timeout.Token))
            {
                events.Add(received);
            }
        });
        await client.UpdateSessionAsync(session, timeout.Token);
        await client.StreamAsync(pcm, bytesPerSecond, speed, timeout.Token, frameBytes: frameBytes);
        await client.CloseOutputAsync(timeout.Token);
        await reading;
        return (events, client);
    }
}

public class StreamingTests(StreamingServerFixture server, ITestOutputHelper output) : IClassFixture<StreamingServerFixture>
{
    private static readonly (float[] Samples, int Rate) Jfk = StreamAudio.ReadWav(TestAssets.JfkWav);

    [Theory]
    [InlineData(1.0)]
    [InlineData(10.0)]
    public async Task Speech_events_fall_inside_the_speech_span_and_each_utterance_is_transcribed_once(double speed)
    {
        var audio = StreamAudio.Pad(Jfk.Samples, 16000, 2, 2);
        var span = StreamAudio.SpeechSpan(audio, 16000);
        var (events, client) = await server.StreamAsync(new { model = "whisper-1" }, StreamAudio.Pcm16(audio), 32000, speed);
        await using var _ = client;

        Log(events);
        var started = events.Where(e => e.Type == "input_audio_buffer.speech_started").ToList();
        var stopped = events.Where(e => e.Type == "input_audio_buffer.speech_stopped").ToList();
        var completed = events.Where(e => e.Type == "transcript.completed").ToList();
        Assert.Equal("session.created", events[0].Type);
        Assert.DoesNotContain(events, e => e.Type == "error");
        Assert.NotEmpty(started);
        Assert.Equal(started.Count, stopped.Count);
        Assert.Equal(stopped.Select(ItemId).Order(), completed.Select(ItemId).Order());
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);

        var firstStart = started[0].Body.GetProperty("audio_start_ms").GetInt64() / 1000.0;
        var lastStop = stopped[^1].Body.GetProperty("audio_end_ms").GetInt64() / 1000.0;
        output.WriteLine($"speech span by energy {span.Start:0.00}–{span.End:0.00} s; VAD {firstStart:0.00}–{lastStop:0.00} s in {started.Count} utterances");
        Assert.InRange(firstStart, span.Start - 0.25, span.Start + 0.25);
        Assert.InRange(lastStop, span.End - 0.25, span.End + 0.25);
        foreach (var edge in started.Select(e => e.Body.GetProperty("audio_start_ms").GetInt64()).Concat(stopped.Select(e => e.Body.GetProperty("audio_end_ms").GetInt64())))
        {
            Assert.InRange(edge / 1000.0, span.Start - 0.25, span.End + 0.25);
        }

        foreach (var transcript in completed)
        {
            Assert.True(transcript.Body.GetProperty("end").GetDouble() > transcript.Body.GetProperty("start").GetDouble());
        }
    }

    [Theory]
    [InlineData(8000)]
    [InlineData(48000)]
    public async Task Other_sample_rates_are_resampled(int rate)
    {
        var audio = StreamAudio.Resample(StreamAudio.Pad(Jfk.Samples, 16000, 1, 1.5), 16000, rate);
        var (events, client) = await server.StreamAsync(
            new { input_audio_format = new { encoding = "pcm_f32le", sample_rate = rate, channels = 1 } },
            StreamAudio.PcmF32(audio), rate * 4, speed: 0, frameBytes: 4);
        await using var _ = client;

        Log(events);
        Assert.Equal(rate, events.Single(e => e.Type == "session.updated").Body.GetProperty("session").GetProperty("settings").GetProperty("input_audio_format").GetProperty("sample_rate").GetInt32());
        Assert.Contains(events, e => e.Type == "input_audio_buffer.speech_started");
        Assert.Contains(events, e => e.Type == "transcript.completed");
        Assert.DoesNotContain(events, e => e.Type == "error");
        var lastEnd = events.Last(e => e.Type == "transcript.completed").Body.GetProperty("end").GetDouble();
        Assert.InRange(lastEnd, 10, (audio.Length / (double)rate) + 0.1); // times are in seconds of audio, whatever the input rate
    }

    [Fact]
    public async Task A_dog_clip_gives_sound_events_with_dog_labels()
    {
        var clip = Esc50.Clips.First(c => c.Category == "dog");
        var (samples, rate) = StreamAudio.ReadWav(clip.Path);
        var (events, client) = await server.StreamAsync(
            new { classify = true, turn_detection = (object?)null, input_audio_format = new { sample_rate = rate } },
            StreamAudio.Pcm16(samples), rate * 2, speed: 0);
        await using var _ = client;

        Log(events);
        var sounds = events.Where(e => e.Type == "sound").Select(e => e.Body).ToList();
        Assert.Contains(sounds, s => Esc50.AcceptedNames["dog"].Contains(s.GetProperty("label").GetString()!));
        foreach (var sound in sounds)
        {
            Assert.InRange(sound.GetProperty("start").GetDouble(), 0, 5);
            Assert.InRange(sound.GetProperty("end").GetDouble(), sound.GetProperty("start").GetDouble(), 5.01);
            Assert.InRange(sound.GetProperty("peak").GetDouble(), 0.3, 1);
        }
    }

    [Fact]
    public async Task Malformed_messages_and_wrong_settings_get_error_events_and_the_stream_goes_on()
    {
        await using var client = await server.ConnectAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var events = client.ReadEventsAsync(timeout.Token).GetAsyncEnumerator(timeout.Token);

        async Task<JsonElement> NextAsync(string type)
        {
            while (await events.MoveNextAsync())
            {
                if (events.Current.Type == type)
                {
                    return events.Current.Body;
                }
            }

            throw new InvalidOperationException($"stream closed before {type}");
        }

        await NextAsync("session.created");
        await client.SendTextAsync("this is not json", timeout.Token);
        Assert.Equal("invalid_json", (await NextAsync("error")).GetProperty("error").GetProperty("code").GetString());
        await client.SendTextAsync("{\"type\":\"input_audio_buffer.rewind\"}", timeout.Token);
        Assert.Equal("unknown_event", (await NextAsync("error")).GetProperty("error").GetProperty("code").GetString());
        await client.SendTextAsync("{\"type\":\"input_audio_buffer.append\",\"audio\":\"%%%\"}", timeout.Token);
        Assert.Equal("invalid_audio", (await NextAsync("error")).GetProperty("error").GetProperty("code").GetString());

        await client.UpdateSessionAsync(new { input_audio_format = new { sample_rate = 4000 } }, timeout.Token);
        var rate = (await NextAsync("error")).GetProperty("error");
        Assert.Equal("session.input_audio_format.sample_rate", rate.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", rate.GetProperty("type").GetString());
        await client.UpdateSessionAsync(new { model = "whisper-huge" }, timeout.Token);
        Assert.Equal("model_not_found", (await NextAsync("error")).GetProperty("error").GetProperty("code").GetString());
        await client.UpdateSessionAsync(new { turn_detection = new { threshold = 2 } }, timeout.Token);
        Assert.Equal("session.turn_detection.threshold", (await NextAsync("error")).GetProperty("error").GetProperty("param").GetString());
        await client.SendTextAsync("{\"type\":\"input_audio_buffer.commit\"}", timeout.Token);
        Assert.Equal("input_audio_buffer_commit_empty", (await NextAsync("error")).GetProperty("error").GetProperty("code").GetString());

        // Still open and still configurable, with none of the refused changes applied.
        await client.UpdateSessionAsync(new { language = "en" }, timeout.Token);
        var settings = (await NextAsync("session.updated")).GetProperty("session").GetProperty("settings");
        Assert.Equal(16000, settings.GetProperty("input_audio_format").GetProperty("sample_rate").GetInt32());
        Assert.Equal(0.5, settings.GetProperty("turn_detection").GetProperty("threshold").GetDouble());
        Assert.Equal("en", settings.GetProperty("language").GetString());
    }

    [Fact]
    public async Task Audio_as_base64_json_is_transcribed_on_commit()
    {
        await using var client = await server.ConnectAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await client.UpdateSessionAsync(new { turn_detection = (object?)null, word_timestamps = true }, timeout.Token);
        var pcm = StreamAudio.Pcm16(Jfk.Samples);
        for (var offset = 0; offset < pcm.Length; offset += 9999) // odd sizes split samples across messages
        {
            var piece = Convert.ToBase64String(pcm, offset, Math.Min(9999, pcm.Length - offset));
            await client.SendTextAsync($"{{\"type\":\"input_audio_buffer.append\",\"audio\":\"{piece}\"}}", timeout.Token);
        }

        await client.CommitAsync(timeout.Token);
        await foreach (var received in client.ReadEventsAsync(timeout.Token))
        {
            if (received.Type == "transcript.completed")
            {
                Assert.Equal(0, received.Body.GetProperty("start").GetDouble());
                Assert.Equal(Jfk.Samples.Length / 16000.0, received.Body.GetProperty("end").GetDouble(), 0.01);
                Assert.Equal(JsonValueKind.Array, received.Body.GetProperty("words").ValueKind);
                return;
            }

            Assert.NotEqual("error", received.Type);
        }

        Assert.Fail("no transcript.completed");
    }

    [Fact]
    public async Task Keys_come_from_the_header_the_subprotocol_or_the_query_and_need_the_stream_scope()
    {
        var streamKey = await CreateKeyAsync("stream");
        var transcribeKey = await CreateKeyAsync("transcribe");
        var url = new UriBuilder(server.BaseAddress) { Scheme = "ws", Path = "/v1/audio/stream" }.Uri;

        using (var byProtocol = new ClientWebSocket())
        {
            byProtocol.Options.AddSubProtocol(StreamingApi.SubProtocol);
            byProtocol.Options.AddSubProtocol("lockn-api-key." + streamKey);
            await byProtocol.ConnectAsync(url, CancellationToken.None);
            Assert.Equal(StreamingApi.SubProtocol, byProtocol.SubProtocol); // the key is never echoed
        }

        using (var byQuery = new ClientWebSocket())
        {
            await byQuery.ConnectAsync(new Uri(url + "?api_key=" + streamKey), CancellationToken.None);
            Assert.Equal(WebSocketState.Open, byQuery.State);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, await UpgradeStatusAsync(url, null));
        Assert.Equal(HttpStatusCode.Forbidden, await UpgradeStatusAsync(url, transcribeKey));
        using var queryOutsideUpgrade = await server.AnonymousClient.GetAsync("/v1/audio/stream?api_key=" + streamKey);
        Assert.Equal(HttpStatusCode.Unauthorized, queryOutsideUpgrade.StatusCode); // a key in a URL is only taken from a browser's upgrade
        using var plain = await server.Client.GetAsync("/v1/audio/stream");
        Assert.Equal(HttpStatusCode.BadRequest, plain.StatusCode);
        Assert.Equal("websocket_required", (await plain.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("code").GetString());
    }

    private static async Task<HttpStatusCode> UpgradeStatusAsync(Uri url, string? key)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        if (key is not null)
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + key);
        }

        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(url, CancellationToken.None));
        return socket.HttpStatusCode;
    }

    private async Task<string> CreateKeyAsync(string scope)
    {
        using var response = await server.Client.PostAsJsonAsync("/admin/keys", new { name = scope, scopes = new[] { scope } });
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
    }

    private static string ItemId(ReceivedStreamEvent e) => e.Body.GetProperty("item_id").GetString()!;

    private void Log(IEnumerable<ReceivedStreamEvent> events)
    {
        foreach (var e in events.Where(e => e.Type is not ("keepalive" or "transcript.delta")))
        {
            output.WriteLine($"{e.At.TotalSeconds,7:0.000} {e.Body.GetRawText()}");
        }
    }
}
