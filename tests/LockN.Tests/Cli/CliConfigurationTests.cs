using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace LockN.Tests.Cli;

/// <summary>Every command reads and validates its settings as serve does, and takes --data / --models as serve does.</summary>
public sealed class CliConfigurationTests : IDisposable
{
    private const string Jfk = "{jfk}";
    private const string Data = "{data}";
    private const string Models = " --models {models}";
    private readonly string directory = Path.Combine(Path.GetTempPath(), "lockn-cli-config-" + Guid.NewGuid().ToString("N"));

    [Theory]
    [InlineData("transcribe " + Jfk + Models, "LOCKN_Transcription__Slots", "0", "Transcription:Slots must be between 1 and 64 (got '0')")]
    [InlineData("classify " + Jfk + Models, "LOCKN_Classification__Slots", "0", "Classification:Slots must be between 1 and 64 (got '0')")]
    [InlineData("stream -", "LOCKN_Audio__DecodeTimeoutSeconds", "0", "Audio:DecodeTimeoutSeconds must be between 1 and 3600 (got '0')")]
    [InlineData("models list" + Models, "LOCKN_ModelDownload__TimeoutSeconds", "0", "ModelDownload:TimeoutSeconds must be between 1 and 3600 (got '0')")]
    [InlineData("models pull tiny.en" + Models, "LOCKN_ModelDownload__BaseUrl", "not-a-url", "ModelDownload:BaseUrl must be an absolute http(s) URL (got 'not-a-url')")]
    [InlineData("keys create --name ci --data " + Data, "LOCKN_Keys__CacheSeconds", "-1", "Keys:CacheSeconds must be between 0 and 60 (got '-1')")]
    [InlineData("keys list --data " + Data, "LOCKN_Keys__DefaultRequestsPerMinute", "0", "Keys:DefaultRequestsPerMinute must be between 1 and 1000000 (got '0')")]
    [InlineData("keys revoke key_x --data " + Data, "LOCKN_Keys__CacheSeconds", "soon", "Keys:CacheSeconds must be a number (got 'soon')")]
    [InlineData("usage --data " + Data, "LOCKN_Usage__BatchSize", "0", "Usage:BatchSize must be between 1 and 100000 (got '0')")]
    [InlineData("usage --data " + Data, "LOCKN_Usage__QueueCapacity", "lots", "Usage:QueueCapacity must be a whole number (got 'lots')")]
    public async Task A_command_refuses_a_bad_setting_before_it_does_anything_with_one_line_naming_the_key(string command, string variable, string value, string expected)
    {
        var data = Path.Combine(directory, "data");
        var args = command.Split(' ').Select(a => a.Replace(Jfk, TestAssets.JfkWav, StringComparison.Ordinal).Replace(Data, data, StringComparison.Ordinal)
            .Replace("{models}", Path.Combine(directory, "models"), StringComparison.Ordinal));

        var result = await LocknProcess.RunAsync(args, new Dictionary<string, string> { [variable] = value });

        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"lockn: invalid configuration: {expected}", Assert.Single(result.Stderr.Trim().Split('\n')));
        Assert.Equal("", result.Stdout);
        Assert.False(Directory.Exists(directory), "nothing is written before the settings are valid");
    }

    [Fact]
    public async Task A_bad_database_setting_is_refused_by_keys_and_usage_with_one_line_naming_it()
    {
        var environment = new Dictionary<string, string> { ["LOCKN_DB"] = "Host=db;;==nonsense" };

        foreach (var args in new[] { new[] { "keys", "list" }, ["usage"] })
        {
            var result = await LocknProcess.RunAsync([.. args, "--data", directory], environment);

            Assert.Equal(2, result.ExitCode);
            Assert.StartsWith("lockn: invalid configuration: Db (LOCKN_DB) is not a connection string", Assert.Single(result.Stderr.Trim().Split('\n')), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_bad_setting_reads_the_same_from_serve_and_from_a_command()
    {
        var environment = new Dictionary<string, string> { ["LOCKN_Transcription__QueueTimeoutSeconds"] = "-1", ["LOCKN_Transcription__PullDefaultModel"] = "false" };

        var serve = await LocknProcess.RunAsync(["serve", "--urls", "http://127.0.0.1:0", "--models", TestAssets.WhisperModels, "--data", directory], environment);
        var transcribe = await LocknProcess.RunAsync(["transcribe", TestAssets.JfkWav, "--models", TestAssets.WhisperModels], environment);

        Assert.Equal(2, serve.ExitCode);
        Assert.Equal(serve.ExitCode, transcribe.ExitCode);
        Assert.Contains("Transcription:QueueTimeoutSeconds", serve.Stderr, StringComparison.Ordinal);
        Assert.Equal(serve.Stderr, transcribe.Stderr);
    }

    [Fact]
    public async Task Keys_and_usage_use_the_data_directory_of_the_flag_over_LOCKN_DATA()
    {
        var flagged = Path.Combine(directory, "flagged");
        var configured = Path.Combine(directory, "configured");
        var environment = new Dictionary<string, string> { ["LOCKN_DATA"] = configured };

        var created = await LocknProcess.RunAsync(["keys", "create", "--name", "ci", "--scopes", "transcribe,classify", "--expires-in-days", "30", "--json", "--data", flagged], environment);
        var listed = await LocknProcess.RunAsync(["keys", "list", "--json", "--data", flagged], environment);
        var usage = await LocknProcess.RunAsync(["usage", "--json", "--data", flagged], environment);

        Assert.True(created.ExitCode == 0, created.Stderr);
        var id = JsonDocument.Parse(created.Stdout).RootElement.GetProperty("id").GetString();
        Assert.True(listed.ExitCode == 0, listed.Stderr);
        Assert.Equal([id], JsonDocument.Parse(listed.Stdout).RootElement.EnumerateArray().Select(k => k.GetProperty("id").GetString()));
        Assert.True(usage.ExitCode == 0, usage.Stderr);
        Assert.True(File.Exists(Path.Combine(flagged, "lockn.db")));
        Assert.False(Directory.Exists(configured));
    }

    [Fact]
    public async Task Keys_use_the_data_directory_of_LOCKN_DATA_without_the_flag()
    {
        var configured = Path.Combine(directory, "configured");

        var created = await LocknProcess.RunAsync(["keys", "create", "--name", "ci"], new Dictionary<string, string> { ["LOCKN_DATA"] = configured });

        Assert.True(created.ExitCode == 0, created.Stderr);
        Assert.True(File.Exists(Path.Combine(configured, "lockn.db")));
    }

    [Theory]
    [InlineData(null, "http://127.0.0.1:8080")]
    [InlineData("http://127.0.0.1:9000;http://10.0.0.5:9001", "http://127.0.0.1:9000")]
    [InlineData("http://0.0.0.0:9000", "http://127.0.0.1:9000")]
    [InlineData("https://*:9443", "https://127.0.0.1:9443")]
    [InlineData("http://[::]:9000", "http://[::1]:9000")]
    public void Stream_reaches_the_configured_server_at_the_first_of_its_addresses(string? urls, string expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Urls"] = urls }).Build();

        Assert.Equal(expected, LockN.Hosting.LockNConfiguration.LocalServerAddress(configuration));
    }

    public void Dispose()
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
