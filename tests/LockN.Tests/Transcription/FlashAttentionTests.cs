using LockN.Tests.Cli;

namespace LockN.Tests.Transcription;

/// <summary>
/// Flash attention changes how attention is computed, not what comes out: the packaged runtime without it, with it,
/// and the native runtime with it give the same segments and times. (With ../shared's untrained weights the output
/// is empty in all three; with real weights the same comparison checks the text and the timings to the frame.)
/// </summary>
public sealed class FlashAttentionTests
{
    [Fact]
    public async Task Flash_attention_and_the_native_runtime_transcribe_the_corpus_as_the_packaged_runtime_without_it_does()
    {
        var files = File.ReadLines(Path.Combine(TestAssets.Speech, "manifest.tsv")).Skip(1).Take(4)
            .Select(line => Path.Combine(TestAssets.Speech, line.Split('\t')[1])).ToArray();
        string[] args = ["transcribe", .. files, "--model", "whisper-tiny.en", "--models", TestAssets.WhisperModels, "--format", "srt"];

        var baseline = await LocknProcess.RunAsync(args, new Dictionary<string, string> { ["LOCKN_Transcription__FlashAttention"] = "false" });
        var flash = await LocknProcess.RunAsync(args, new Dictionary<string, string> { ["LOCKN_Transcription__FlashAttention"] = "true" });
        var native = await LocknProcess.RunAsync(args, new Dictionary<string, string> { ["LOCKN_Transcription__NativeRuntimePath"] = TestAssets.WhisperNativeRuntime });

        Assert.True(baseline.ExitCode == 0, baseline.Stderr);
        Assert.True(flash.ExitCode == 0, flash.Stderr);
        Assert.True(native.ExitCode == 0, native.Stderr);
        Assert.Equal(files.Length, baseline.Stderr.Split('\n').Count(line => line.Contains("real-time factor", StringComparison.Ordinal)));
        Assert.Equal(baseline.Stdout, flash.Stdout);
        Assert.Equal(baseline.Stdout, native.Stdout);
    }
}
