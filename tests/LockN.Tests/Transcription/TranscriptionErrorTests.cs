using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace LockN.Tests.Transcription;

/// <summary>A server with small limits, so that size and length errors are cheap to provoke.</summary>
public sealed class LimitedServerFixture : LockNServerFixture
{
    public const int MaxUploadBytes = 200_000;
    public const int MaxDurationSeconds = 5;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Transcription:MaxUploadBytes"] = MaxUploadBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Audio:MaxDurationSeconds"] = MaxDurationSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Transcription:SpareWorkers"] = "0",
    };
}

/// <summary>Every bad request gets the right status and an OpenAI-shaped error naming the problem.</summary>
public class TranscriptionErrorTests(LimitedServerFixture server) : IClassFixture<LimitedServerFixture>
{
    private static readonly byte[] ShortWav = TestAudio.NoiseWav(2);

    [Fact]
    public async Task Missing_file_is_400_naming_file()
    {
        var form = new MultipartFormDataContent { { new StringContent("whisper-1"), "model" } };
        await AssertError(await Post(form), HttpStatusCode.BadRequest, "file");
    }

    [Fact]
    public async Task Missing_model_is_400_naming_model() =>
        await AssertError(await Post(TestAudio.Form(ShortWav, "a.wav")), HttpStatusCode.BadRequest, "model");

    [Fact]
    public async Task Unknown_model_is_404_model_not_found()
    {
        var error = await AssertError(await Post(TestAudio.Form(ShortWav, "a.wav", ("model", "whisper-huge"))), HttpStatusCode.NotFound, "model");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("response_format", "xml")]
    [InlineData("temperature", "7")]
    [InlineData("temperature", "warm")]
    [InlineData("language", "english")]
    [InlineData("timestamp_granularities[]", "sentence")]
    [InlineData("stream", "maybe")]
    public async Task Invalid_field_is_400_naming_it(string field, string value) =>
        await AssertError(await Post(TestAudio.Form(ShortWav, "a.wav", ("model", "whisper-1"), (field, value))), HttpStatusCode.BadRequest, field);

    [Fact]
    public async Task Word_timestamps_without_verbose_json_is_400() =>
        await AssertError(await Post(TestAudio.Form(ShortWav, "a.wav", ("model", "whisper-1"), ("timestamp_granularities[]", "word"))),
            HttpStatusCode.BadRequest, "timestamp_granularities[]");

    [Fact]
    public async Task English_only_model_refuses_translation_and_other_languages()
    {
        await AssertError(await Post(TestAudio.Form(ShortWav, "a.wav", ("model", "whisper-tiny.en")), "/v1/audio/translations"), HttpStatusCode.BadRequest, "model");
        await AssertError(await Post(TestAudio.Form(ShortWav, "a.wav", ("model", "whisper-tiny.en"), ("language", "fr"))), HttpStatusCode.BadRequest, "language");
    }

    [Fact]
    public async Task A_body_that_is_not_multipart_is_415()
    {
        using var response = await server.Client.PostAsync("/v1/audio/transcriptions", new StringContent("{\"model\":\"whisper-1\"}", Encoding.UTF8, "application/json"));
        await AssertError(response, HttpStatusCode.UnsupportedMediaType, null);
    }

    [Fact]
    public async Task A_file_that_is_not_audio_is_415() =>
        await AssertError(await Post(TestAudio.Form(Encoding.UTF8.GetBytes("this is a text file, not audio\n"), "notes.txt", ("model", "whisper-1"))),
            HttpStatusCode.UnsupportedMediaType, "file");

    [Fact]
    public async Task A_truncated_wav_header_is_400() =>
        await AssertError(await Post(TestAudio.Form(ShortWav[..30], "a.wav", ("model", "whisper-1"))), HttpStatusCode.BadRequest, "file");

    [Fact]
    public async Task A_wav_claiming_4_GB_of_data_is_decoded_from_what_is_there()
    {
        var lying = (byte[])ShortWav.Clone();
        BitConverter.GetBytes(uint.MaxValue - 8).CopyTo(lying, 4);
        BitConverter.GetBytes(uint.MaxValue - 44).CopyTo(lying, 40);

        using var response = await Post(TestAudio.Form(lying, "a.wav", ("model", "whisper-1"), ("response_format", "verbose_json")));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2.0, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("duration").GetDouble(), 2);
    }

    [Fact]
    public async Task An_empty_file_is_400() =>
        await AssertError(await Post(TestAudio.Form([], "a.wav", ("model", "whisper-1"))), HttpStatusCode.BadRequest, "file");

    [Fact]
    public async Task An_upload_over_the_size_limit_is_413() =>
        await AssertError(await Post(TestAudio.Form(TestAudio.NoiseWav(8), "long.wav", ("model", "whisper-1"))), HttpStatusCode.RequestEntityTooLarge, "file");

    [Fact]
    public async Task Audio_longer_than_the_duration_limit_is_413()
    {
        var mp3 = await File.ReadAllBytesAsync(TestAssets.JfkMp3); // 11 s in 76 KB: under the size limit, over the length limit
        var error = await AssertError(await Post(TestAudio.Form(mp3, "jfk.mp3", ("model", "whisper-1"))), HttpStatusCode.RequestEntityTooLarge, "file");
        Assert.Contains("5", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_routes_answer_in_the_openai_shape() =>
        await AssertError(await server.Client.GetAsync("/v1/nothing-here"), HttpStatusCode.NotFound, null);

    private Task<HttpResponseMessage> Post(HttpContent content, string path = "/v1/audio/transcriptions") => server.Client.PostAsync(path, content);

    private static async Task<JsonElement> AssertError(HttpResponseMessage response, HttpStatusCode status, string? param)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
            Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
            Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("type").GetString()));
            Assert.True(error.TryGetProperty("code", out _));
            if (param is not null)
            {
                Assert.Equal(param, error.GetProperty("param").GetString());
            }

            return error;
        }
    }
}
