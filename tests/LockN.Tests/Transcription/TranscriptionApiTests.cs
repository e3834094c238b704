using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace LockN.Tests.Transcription;

/// <summary>The OpenAI audio contract against the real server, with test-weight models (never asserting transcript text).</summary>
public class TranscriptionApiTests(LockNServerFixture server) : IClassFixture<LockNServerFixture>
{
    private static readonly byte[] JfkMp3 = File.ReadAllBytes(TestAssets.JfkMp3);
    private static readonly byte[] JfkWav = File.ReadAllBytes(TestAssets.JfkWav);

    [Fact]
    public async Task Jfk_mp3_as_verbose_json_reports_11_seconds_of_english()
    {
        using var response = await server.Client.PostAsync("/v1/audio/transcriptions",
            TestAudio.Form(JfkMp3, "jfk.mp3", ("model", "whisper-1"), ("response_format", "verbose_json")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(11.0, body.GetProperty("duration").GetDouble(), 2);
        Assert.Equal("en", body.GetProperty("language").GetString());
        Assert.Equal("transcribe", body.GetProperty("task").GetString());
        Assert.Equal(JsonValueKind.Array, body.GetProperty("segments").ValueKind);
        Assert.Equal(JsonValueKind.String, body.GetProperty("text").ValueKind);
    }

    [Fact]
    public async Task Json_format_returns_text_and_duration_usage()
    {
        using var response = await server.Client.PostAsync("/v1/audio/transcriptions", TestAudio.Form(JfkWav, "jfk.wav", ("model", "whisper-tiny.en")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(JsonValueKind.String, body.GetProperty("text").ValueKind);
        Assert.Equal("duration", body.GetProperty("usage").GetProperty("type").GetString());
        Assert.Equal((int)Math.Ceiling(await Audio.Ffmpeg.DecodedDurationAsync(TestAssets.JfkWav)), body.GetProperty("usage").GetProperty("seconds").GetInt32());
    }

    [Theory]
    [InlineData("text", "text/plain")]
    [InlineData("srt", "application/x-subrip")]
    [InlineData("vtt", "text/vtt")]
    public async Task Plain_formats_have_their_media_types(string format, string mediaType)
    {
        using var response = await server.Client.PostAsync("/v1/audio/transcriptions",
            TestAudio.Form(JfkWav, "jfk.wav", ("model", "whisper-1"), ("response_format", format)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        if (format == "vtt")
        {
            Assert.StartsWith("WEBVTT", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Word_granularity_returns_a_words_array()
    {
        using var response = await server.Client.PostAsync("/v1/audio/transcriptions",
            TestAudio.Form(JfkWav, "jfk.wav", ("model", "whisper-1"), ("response_format", "verbose_json"), ("timestamp_granularities[]", "word")));

        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(JsonValueKind.Array, body.GetProperty("words").ValueKind);
        Assert.False(body.TryGetProperty("segments", out _), "segments were not asked for");
    }

    [Fact]
    public async Task Stream_true_sends_server_sent_events_ending_with_done()
    {
        using var response = await server.Client.PostAsync("/v1/audio/transcriptions",
            TestAudio.Form(JfkWav, "jfk.wav", ("model", "whisper-1"), ("stream", "true")));

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = (await response.Content.ReadAsStringAsync())
            .Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement)
            .ToArray();
        Assert.NotEmpty(events);
        Assert.All(events[..^1], e => Assert.Equal("transcript.text.delta", e.GetProperty("type").GetString()));
        Assert.Equal("transcript.text.done", events[^1].GetProperty("type").GetString());
        Assert.Equal((int)Math.Ceiling(await Audio.Ffmpeg.DecodedDurationAsync(TestAssets.JfkWav)), events[^1].GetProperty("usage").GetProperty("seconds").GetInt32());
    }

    [Fact]
    public async Task Translation_works_with_a_multilingual_model()
    {
        using var response = await server.Client.PostAsync("/v1/audio/translations",
            TestAudio.Form(JfkWav, "jfk.wav", ("model", "whisper-tiny"), ("response_format", "verbose_json")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("translate", body.GetProperty("task").GetString());
    }

    [Fact]
    public async Task Models_lists_every_model_file_and_the_openai_alias()
    {
        var body = await server.Client.GetFromJsonAsync<JsonElement>("/v1/models");

        var ids = body.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToArray();
        Assert.Equal("list", body.GetProperty("object").GetString());
        Assert.Contains("whisper-tiny.en", ids);
        Assert.Contains("whisper-tiny", ids);
        Assert.Contains("whisper-base.en", ids);
        Assert.Contains("whisper-1", ids);
    }

    [Fact]
    public async Task Readiness_shows_slots_and_queue_of_each_model()
    {
        using var response = await server.Client.GetAsync("/health/ready");
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var tiny = body.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "whisper-tiny.en");
        Assert.Equal("ready", tiny.GetProperty("state").GetString());
        Assert.Equal(1, tiny.GetProperty("slots").GetProperty("total").GetInt32());
        Assert.Equal(16, tiny.GetProperty("queue").GetProperty("capacity").GetInt32());
    }

    [Fact]
    public async Task Liveness_answers_without_a_model()
    {
        using var response = await server.Client.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
