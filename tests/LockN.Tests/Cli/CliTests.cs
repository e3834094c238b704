using System.Text.Json;

namespace LockN.Tests.Cli;

public class CliTests
{
    private static readonly string[] TinyEn = ["--models", TestAssets.WhisperModels, "--model", "whisper-tiny.en"];

    [Fact]
    public async Task Transcribe_prints_the_transcript_and_a_closing_line_with_the_real_time_factor()
    {
        var result = await LocknProcess.RunAsync(["transcribe", TestAssets.JfkMp3, "--format", "json", .. TinyEn]);

        Assert.True(result.ExitCode == 0, result.Stderr);
        var json = JsonDocument.Parse(result.Stdout).RootElement;
        Assert.Equal(11.0, json.GetProperty("duration").GetDouble(), 2);
        Assert.Matches(@"jfk\.mp3: 11\.00 s of audio in [0-9.]+ s wall, real-time factor [0-9.]+", result.Stderr);
    }

    [Theory]
    [InlineData("srt")]
    [InlineData("vtt")]
    [InlineData("text")]
    public async Task Transcribe_writes_each_format(string format)
    {
        var result = await LocknProcess.RunAsync(["transcribe", TestAssets.JfkWav, "--format", format, .. TinyEn]);

        Assert.True(result.ExitCode == 0, result.Stderr);
        if (format == "vtt")
        {
            Assert.StartsWith("WEBVTT", result.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Transcribe_of_a_missing_file_fails_with_one_line()
    {
        var result = await LocknProcess.RunAsync(["transcribe", "/nonexistent/audio.wav", .. TinyEn]);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.Contains("/nonexistent/audio.wav", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Transcribe_of_a_file_that_is_not_audio_fails_with_one_line()
    {
        var notAudio = Path.Combine(Path.GetTempPath(), $"lockn-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(notAudio, "not audio at all");
        try
        {
            var result = await LocknProcess.RunAsync(["transcribe", notAudio, .. TinyEn]);

            Assert.Equal(1, result.ExitCode);
            Assert.Single(result.Stderr.Trim().Split('\n'));
        }
        finally
        {
            File.Delete(notAudio);
        }
    }

    [Fact]
    public async Task Transcribe_with_an_unknown_model_says_how_to_get_it()
    {
        var result = await LocknProcess.RunAsync(["transcribe", TestAssets.JfkWav, "--models", TestAssets.WhisperModels, "--model", "whisper-small"]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("lockn models pull small", result.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("LOCKN_Transcription__Slots", "0", "Transcription:Slots")]
    [InlineData("LOCKN_Transcription__QueueTimeoutSeconds", "-1", "Transcription:QueueTimeoutSeconds")]
    [InlineData("LOCKN_Transcription__Slots", "many", "Transcription:Slots")]
    [InlineData("LOCKN_Audio__MaxDurationSeconds", "0", "Audio:MaxDurationSeconds")]
    [InlineData("Dispatch__Backends__0__Url", "not-a-url", "Dispatch:Backends:0:Url")]
    [InlineData("LOCKN_Dispatch__Backends__0__Slots", "-1", "Dispatch:Backends:0:Slots")]
    public async Task Serve_with_invalid_configuration_fails_at_start_with_one_line_naming_the_key(string variable, string value, string key)
    {
        var result = await LocknProcess.RunAsync(
            ["serve", "--urls", "http://127.0.0.1:0", "--models", TestAssets.WhisperModels, "--data", Path.GetTempPath()],
            new Dictionary<string, string> { [variable] = value, ["LOCKN_Transcription__PullDefaultModel"] = "false" });

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(key, result.Stderr, StringComparison.Ordinal);
        Assert.Single(result.Stderr.Trim().Split('\n'));
    }
}
