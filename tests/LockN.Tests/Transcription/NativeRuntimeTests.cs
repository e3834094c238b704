using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using LockN.Tests.Cli;

namespace LockN.Tests.Transcription;

public sealed class NativeRuntimeServerFixture : LockNServerFixture
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Transcription:NativeRuntimePath"] = TestAssets.WhisperNativeRuntime,
        ["Transcription:SpareWorkers"] = "0",
    };
}

/// <summary>Transcription:NativeRuntimePath: the configured whisper.cpp libraries run, or LockN does not start.</summary>
public sealed class NativeRuntimeTests(NativeRuntimeServerFixture server, LockNServerFixture packaged) : IClassFixture<NativeRuntimeServerFixture>, IClassFixture<LockNServerFixture>, IDisposable
{
    private readonly string directory = Path.Combine(Path.GetTempPath(), "lockn-native-runtime-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task The_model_runs_on_the_configured_libraries_and_readiness_names_them()
    {
        using var content = new MultipartFormDataContent
        {
            { new ByteArrayContent(await File.ReadAllBytesAsync(TestAssets.JfkWav)) { Headers = { ContentType = new MediaTypeHeaderValue("audio/wav") } }, "file", "jfk.wav" },
            { new StringContent("whisper-1"), "model" },
        };
        using var transcribed = await server.Client.PostAsync("/v1/audio/transcriptions", content);
        var runtime = (await server.DefaultModelAsync()).GetProperty("runtime");

        Assert.Equal(HttpStatusCode.OK, transcribed.StatusCode);
        Assert.Equal("whisper.cpp", runtime.GetProperty("engine").GetString());
        Assert.Equal("native", runtime.GetProperty("source").GetString());
        var library = runtime.GetProperty("library").GetString()!;
        Assert.StartsWith("libwhisper", library, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(TestAssets.WhisperNativeRuntime, library)), $"{library} is not in {TestAssets.WhisperNativeRuntime}");
        Assert.True(runtime.GetProperty("flash_attention").GetBoolean());
        Assert.Contains("CPU :", runtime.GetProperty("system_info").GetString(), StringComparison.Ordinal);
        // The log names the full path the worker mapped (links resolved), so an operator can tell which build runs.
        var logged = server.Logs.Lines.Select(line => Regex.Match(line, @"native runtime (/\S+): ")).First(match => match.Success).Groups[1].Value;
        Assert.Equal(library, Path.GetFileName(logged));
        Assert.Equal(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(TestAssets.WhisperNativeRuntime, library))), SHA256.HashData(await File.ReadAllBytesAsync(logged)));
    }

    [Fact]
    public async Task Without_the_setting_the_packaged_runtime_runs_and_readiness_says_so()
    {
        var runtime = (await packaged.DefaultModelAsync()).GetProperty("runtime");

        Assert.Equal("packaged", runtime.GetProperty("source").GetString());
        Assert.StartsWith("libwhisper", runtime.GetProperty("library").GetString(), StringComparison.Ordinal);
        Assert.True(runtime.GetProperty("flash_attention").GetBoolean());
    }

    [Fact]
    public async Task A_runtime_directory_that_does_not_exist_stops_start_up_with_one_line_naming_the_key()
    {
        var missing = Path.Combine(directory, "no-such-runtime");

        var result = await ServeAsync(missing);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"lockn: invalid configuration: Transcription:NativeRuntimePath: {missing} is not a directory.", Assert.Single(result.Stderr.Trim().Split('\n')));
    }

    [Fact]
    public async Task Libraries_that_do_not_load_stop_serve_and_transcribe_with_the_same_line_naming_the_key()
    {
        // A directory that looks right but holds no loadable code: what a copy from another architecture looks like.
        var broken = Path.Combine(directory, "broken-runtime");
        Directory.CreateDirectory(broken);
        foreach (var name in new[] { "libggml-base.so", "libggml.so", "libwhisper.so" })
        {
            await File.WriteAllTextAsync(Path.Combine(broken, name), "not a shared library");
        }

        var serve = await ServeAsync(broken);
        var transcribe = await LocknProcess.RunAsync(["transcribe", TestAssets.JfkWav, "--models", TestAssets.WhisperModels],
            new Dictionary<string, string> { ["LOCKN_Transcription__NativeRuntimePath"] = broken, ["LOCKN_Transcription__DefaultModel"] = "whisper-tiny.en" });

        Assert.Equal(2, serve.ExitCode);
        var line = Assert.Single(serve.Stderr.Trim().Split('\n'));
        Assert.StartsWith($"lockn: invalid configuration: Transcription:NativeRuntimePath: cannot load {Path.Combine(broken, "libggml-base.so")}: ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", line, StringComparison.Ordinal);
        Assert.Equal(2, transcribe.ExitCode);
        Assert.Equal(serve.Stderr, transcribe.Stderr);
        Assert.Equal("", transcribe.Stdout);
    }

    private Task<LocknProcess.Result> ServeAsync(string runtimePath) =>
        LocknProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0", "--models", TestAssets.WhisperModels, "--data", Path.Combine(directory, "data")],
            new Dictionary<string, string> { ["LOCKN_Transcription__NativeRuntimePath"] = runtimePath, ["LOCKN_Transcription__PullDefaultModel"] = "false" });

    public void Dispose()
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
