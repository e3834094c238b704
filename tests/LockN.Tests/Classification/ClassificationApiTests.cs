using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Audio;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LockN.Tests.Classification;

public class ClassificationApiTests(LockNServerFixture server, ITestOutputHelper output) : IClassFixture<LockNServerFixture>
{
    private async Task<JsonElement> ClassifyAsync(byte[] file, string name, params (string Name, string Value)[] fields)
    {
        using var response = await server.Client.PostAsync("/v1/audio/classifications", TestAudio.Form(file, name, fields));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body;
    }

    [Fact]
    public async Task The_80_esc50_clips_score_at_least_65_percent_top1_and_85_percent_top5()
    {
        int top1 = 0, top5 = 0;
        var misses = new List<string>();
        foreach (var clip in Esc50.Clips)
        {
            var body = await ClassifyAsync(await File.ReadAllBytesAsync(clip.Path), Path.GetFileName(clip.Path),
                ("exclude_generic", "true"), ("aggregate", "mean"), ("top_k", "5"));
            var names = body.GetProperty("labels").EnumerateArray().Select(l => l.GetProperty("label").GetString()!).ToList();
            var accepted = Esc50.AcceptedNames[clip.Category];
            top1 += accepted.Contains(names[0]) ? 1 : 0;
            top5 += names.Any(accepted.Contains) ? 1 : 0;
            if (!accepted.Contains(names[0]))
            {
                misses.Add($"{clip.Category}: {names[0]}");
            }
        }

        var count = Esc50.Clips.Count;
        output.WriteLine($"{count} clips: top-1 {100.0 * top1 / count:0.0} %, top-5 {100.0 * top5 / count:0.0} %; top-1 misses: {string.Join("; ", misses)}");
        Assert.Equal(80, count);
        Assert.True(top1 >= 0.65 * count, $"top-1 {top1}/{count}");
        Assert.True(top5 >= 0.85 * count, $"top-5 {top5}/{count}");
    }

    [Fact]
    public async Task A_dog_between_two_silences_is_an_event_inside_the_dog_span()
    {
        var dog = Esc50.Clips.First(c => c.Category == "dog");
        var decoded = await new AudioDecoder(Options.Create(new AudioOptions()), NullLogger<AudioDecoder>.Instance).DecodeAsync(File.OpenRead(dog.Path), CancellationToken.None);
        var padded = new float[(16000 * 3) + decoded.Audio!.Samples.Length + (16000 * 3)];
        decoded.Audio.Samples.CopyTo(0, padded.AsSpan(16000 * 3));
        var dogEnd = 3 + decoded.Audio.DurationSeconds;

        var body = await ClassifyAsync(TestAudio.FloatWav(padded), "padded-dog.wav", ("events", "true"), ("exclude_generic", "true"));

        var events = body.GetProperty("events").EnumerateArray()
            .Select(e => (Label: e.GetProperty("label").GetString()!, Start: e.GetProperty("start").GetDouble(), End: e.GetProperty("end").GetDouble()))
            .ToList();
        output.WriteLine(string.Join("; ", events.Select(e => $"{e.Label} {e.Start:0.00}–{e.End:0.00} s")));
        Assert.Contains(events, e => Esc50.AcceptedNames["dog"].Contains(e.Label) && e.Start >= 3 - YamnetWindowSeconds && e.End <= dogEnd + YamnetWindowSeconds);
        Assert.DoesNotContain(events, e => Esc50.AcceptedNames["dog"].Contains(e.Label) && (e.End < 3 || e.Start > dogEnd));
    }

    // A window that starts before the dog may already hear it.
    private const double YamnetWindowSeconds = 0.975;

    [Fact]
    public async Task A_silent_file_returns_silence_on_top()
    {
        var body = await ClassifyAsync(TestAudio.FloatWav(new float[16000 * 2]), "silence.wav");

        Assert.Equal("Silence", body.GetProperty("labels")[0].GetProperty("label").GetString());
        Assert.Equal(2.0, body.GetProperty("duration").GetDouble(), 3);
    }

    [Fact]
    public async Task A_file_shorter_than_one_window_is_padded_and_the_timeline_has_a_window_per_hop()
    {
        var shortClip = await ClassifyAsync(TestAudio.NoiseWav(0.3), "short.wav", ("timeline", "true"));
        var longer = await ClassifyAsync(TestAudio.NoiseWav(3), "longer.wav", ("timeline", "true"), ("top_k", "2"));

        Assert.Equal(1, shortClip.GetProperty("timeline").GetArrayLength());
        Assert.Equal(5, shortClip.GetProperty("labels").GetArrayLength());
        Assert.Equal(LockN.Classification.YamnetModel.WindowCount(48000), longer.GetProperty("timeline").GetArrayLength());
        Assert.All(longer.GetProperty("timeline").EnumerateArray(), w => Assert.Equal(2, w.GetProperty("labels").GetArrayLength()));
    }

    [Fact]
    public async Task Labels_filter_and_threshold_limit_what_is_reported()
    {
        var clip = await File.ReadAllBytesAsync(Esc50.Clips.First(c => c.Category == "siren").Path);

        var filtered = await ClassifyAsync(clip, "siren.wav", ("labels[]", "Siren"), ("labels[]", "Dog"));
        var thresholded = await ClassifyAsync(clip, "siren.wav", ("threshold", "0.99"), ("top_k", "521"));

        Assert.Subset(new HashSet<string> { "Siren", "Dog" }, filtered.GetProperty("labels").EnumerateArray().Select(l => l.GetProperty("label").GetString()!).ToHashSet());
        Assert.All(thresholded.GetProperty("labels").EnumerateArray(), l => Assert.True(l.GetProperty("score").GetDouble() >= 0.99));
    }

    [Theory]
    [InlineData("top_k", "0")]
    [InlineData("top_k", "many")]
    [InlineData("threshold", "1.5")]
    [InlineData("aggregate", "median")]
    [InlineData("labels[]", "Dragon")]
    [InlineData("events", "maybe")]
    public async Task A_bad_option_is_400_naming_it(string field, string value)
    {
        using var response = await server.Client.PostAsync("/v1/audio/classifications", TestAudio.Form(TestAudio.NoiseWav(1), "a.wav", (field, value)));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(field, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task Unknown_model_is_404_and_text_is_415()
    {
        using var model = await server.Client.PostAsync("/v1/audio/classifications", TestAudio.Form(TestAudio.NoiseWav(1), "a.wav", ("model", "panns")));
        using var text = await server.Client.PostAsync("/v1/audio/classifications", TestAudio.Form("not audio"u8.ToArray(), "a.txt"));

        Assert.Equal(HttpStatusCode.NotFound, model.StatusCode);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, text.StatusCode);
    }

    [Fact]
    public async Task Yamnet_is_listed_in_v1_models()
    {
        var models = await server.Client.GetFromJsonAsync<JsonElement>("/v1/models");

        Assert.Contains(models.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == "yamnet");
    }
}
