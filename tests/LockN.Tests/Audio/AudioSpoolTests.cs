using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LockN.Audio;
using LockN.Tests.Classification;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LockN.Tests.Audio;

/// <summary>A server that spools anything over 2 s, classifying in batches of 5 windows: long audio in miniature.</summary>
public sealed class SpoolingServerFixture : LockNServerFixture
{
    protected override bool WaitsForWhisper => false;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Audio:SpoolAfterSeconds"] = "2",
        ["Audio:MaxDurationSeconds"] = "60",
        ["Classification:MaxWindowsPerRun"] = "5",
    };
}

/// <summary>The same server on its defaults: everything here stays in memory and is classified in batches of 16.</summary>
public sealed class InMemoryServerFixture : LockNServerFixture
{
    protected override bool WaitsForWhisper => false;
}

public class AudioSpoolTests(SpoolingServerFixture spooling, InMemoryServerFixture inMemory, ITestOutputHelper output)
    : IClassFixture<SpoolingServerFixture>, IClassFixture<InMemoryServerFixture>
{
    private static readonly Lazy<(byte[] Wav, double Seconds)> LongSounds = new(BuildLongSounds);

    [Fact]
    public async Task A_long_upload_is_classified_from_its_spool_file_as_it_is_from_memory()
    {
        var fields = new[] { ("events", "true"), ("timeline", "true"), ("top_k", "5") };
        var spooledBefore = SpooledInputs(spooling);
        var spooled = await PostAsync(spooling, "/v1/audio/classifications", LongSounds.Value.Wav, fields);
        var held = await PostAsync(inMemory, "/v1/audio/classifications", LongSounds.Value.Wav, fields);

        Assert.Equal(spooledBefore + 1, SpooledInputs(spooling));
        Assert.Equal(0, SpooledInputs(inMemory));
        var windows = spooled.GetProperty("timeline").GetArrayLength();
        output.WriteLine($"{windows} windows in batches of 5; top label {spooled.GetProperty("labels")[0].GetProperty("label")}");
        Assert.True(windows > 16 * 3, $"only {windows} windows: the input does not span several batches");
        AssertSameJson(held, spooled, "$");
        await AssertSpoolIsEmpty(spooling);
    }

    [Fact]
    public async Task A_long_upload_is_transcribed_from_its_spool_file_as_it_is_from_memory()
    {
        var fields = new[] { ("model", "whisper-tiny.en"), ("response_format", "verbose_json"), ("timestamp_granularities[]", "segment") };
        var spooledBefore = SpooledInputs(spooling);
        var spooled = await PostAsync(spooling, "/v1/audio/transcriptions", LongSounds.Value.Wav, fields);
        var held = await PostAsync(inMemory, "/v1/audio/transcriptions", LongSounds.Value.Wav, fields);

        Assert.Equal(spooledBefore + 1, SpooledInputs(spooling));
        Assert.Equal(LongSounds.Value.Seconds, spooled.GetProperty("duration").GetDouble(), 0.01);
        AssertSameJson(held, spooled, "$");
        await AssertSpoolIsEmpty(spooling);
    }

    [Fact]
    public async Task An_upload_refused_after_it_began_to_spool_leaves_no_file_and_no_reservation()
    {
        var tooLong = TestAudio.NoiseWav(70);
        using var response = await spooling.Client.PostAsync("/v1/audio/classifications", TestAudio.Form(tooLong, "long.wav"));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("60 s", body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        await AssertSpoolIsEmpty(spooling);
    }

    [Fact]
    public async Task An_input_that_finds_the_memory_budget_spent_goes_to_a_file_and_the_budget_comes_back()
    {
        var directory = Directory.CreateTempSubdirectory("lockn-spool-").FullName;
        try
        {
            var spool = new AudioSpool(directory, new AudioOptions { MaxDecodedMemoryMiB = 16, SpoolAfterSeconds = 3600 }, NullLogger<AudioSpool>.Instance);
            var second = new float[16000];
            Array.Fill(second, 0.25f);

            // Another request holds all but 32 KiB of the budget: a one-second input (62.5 KiB) does not fit.
            Assert.True(spool.TryReserve(spool.BudgetBytes - (32 * 1024)));
            using (var crowded = Write(spool, second))
            {
                Assert.NotNull(crowded.FilePath);
                Assert.Equal(second, crowded.ToArray());
                Assert.Equal(second.Length * sizeof(float), spool.SpooledBytes);
            }

            Assert.Equal(0, spool.SpooledBytes);
            Assert.Empty(Directory.EnumerateFiles(directory));
            spool.Release(spool.BudgetBytes - (32 * 1024));

            using (var roomy = Write(spool, second))
            {
                Assert.Null(roomy.FilePath);
                Assert.True(spool.InMemoryBytes >= second.Length * sizeof(float));
            }

            Assert.Equal(0, spool.InMemoryBytes);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task An_upload_that_finds_the_disk_budget_spent_is_a_503_naming_the_setting()
    {
        var directory = Directory.CreateTempSubdirectory("lockn-spool-").FullName;
        try
        {
            var spool = new AudioSpool(directory, new AudioOptions { SpoolAfterSeconds = 1, MaxSpoolMiB = 64 }, NullLogger<AudioSpool>.Instance);
            Assert.True(spool.TryReserveDisk((64L * 1024 * 1024) - (100 * 1024)));

            var result = await WavReader.ReadAsync(new MemoryStream(TestAudio.NoiseWav(3)), 3600, streamed: false, spool, CancellationToken.None);

            Assert.Equal(AudioDecodeError.SpoolUnavailable, result.Error);
            var error = AudioErrors.ToApiError(result);
            Assert.Equal(503, error.StatusCode);
            Assert.Contains("Audio:MaxSpoolMiB", error.Message, StringComparison.Ordinal);
            Assert.Equal((64L * 1024 * 1024) - (100 * 1024), spool.SpooledBytes);
            Assert.Empty(Directory.EnumerateFiles(directory));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static DecodedSamples Write(AudioSpool spool, float[] samples)
    {
        using var writer = spool.CreateWriter(samples.Length);
        writer.Append(samples);
        return writer.Finish();
    }

    private static async Task<JsonElement> PostAsync(LockNServerFixture server, string path, byte[] wav, (string Name, string Value)[] fields)
    {
        using var response = await server.Client.PostAsync(path, TestAudio.Form(wav, "long.wav", fields));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body;
    }

    private static long SpooledInputs(LockNServerFixture server) => server.Services.GetRequiredService<AudioSpool>().SpooledInputs;

    // The request's audio is released as its response completes, which may be just after the client has read it.
    private static Task AssertSpoolIsEmpty(LockNServerFixture server)
    {
        var spool = server.Services.GetRequiredService<AudioSpool>();
        return LockNServerFixture.WaitForAsync(() => Task.FromResult(
            spool.SpooledBytes == 0 && spool.InMemoryBytes == 0 && !Directory.EnumerateFiles(spool.Directory).Any()));
    }

    // Scores may differ in the last bits between batch sizes (ONNX Runtime's kernels block differently); everything
    // else must be identical.
    private static void AssertSameJson(JsonElement expected, JsonElement actual, string path)
    {
        Assert.True(expected.ValueKind == actual.ValueKind, $"{path}: {expected.ValueKind} vs {actual.ValueKind}");
        switch (expected.ValueKind)
        {
            case JsonValueKind.Object:
                Assert.Equal(expected.EnumerateObject().Select(p => p.Name), actual.EnumerateObject().Select(p => p.Name));
                foreach (var property in expected.EnumerateObject())
                {
                    AssertSameJson(property.Value, actual.GetProperty(property.Name), $"{path}.{property.Name}");
                }

                break;
            case JsonValueKind.Array:
                Assert.True(expected.GetArrayLength() == actual.GetArrayLength(), $"{path}: {expected.GetArrayLength()} vs {actual.GetArrayLength()} items");
                for (var i = 0; i < expected.GetArrayLength(); i++)
                {
                    AssertSameJson(expected[i], actual[i], $"{path}[{i}]");
                }

                break;
            case JsonValueKind.Number:
                Assert.True(Math.Abs(expected.GetDouble() - actual.GetDouble()) <= 1e-4, $"{path}: {expected} vs {actual}");
                break;
            default:
                Assert.True(expected.ToString() == actual.ToString(), $"{path}: {expected} vs {actual}");
                break;
        }
    }

    // 40 s of real sounds: ESC-50 clips of different categories, one after another, with a second of silence between.
    private static (byte[] Wav, double Seconds) BuildLongSounds()
    {
        var decoder = new AudioDecoder(Options.Create(new AudioOptions()), NullLogger<AudioDecoder>.Instance);
        var samples = new List<float>();
        foreach (var clip in Esc50.Clips.DistinctBy(c => c.Category).Take(7))
        {
            using var stream = File.OpenRead(clip.Path);
            var decoded = decoder.DecodeAsync(stream, CancellationToken.None).GetAwaiter().GetResult();
            using var audio = decoded.Audio!;
            samples.AddRange(audio.Samples.ToArray());
            samples.AddRange(new float[16000]);
        }

        return (TestAudio.FloatWav([.. samples]), samples.Count / 16000.0);
    }
}
