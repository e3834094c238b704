using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LockN.Keys;
using LockN.Tests.Cli;

namespace LockN.Tests.Keys;

/// <summary>A first start with no LOCKN_ADMIN_KEY and an empty database.</summary>
public sealed class FirstStartServerFixture : LockNServerFixture
{
    protected override bool WaitsForWhisper => false; // no test here needs a transcript before its first request

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        [KeysOptions.AdminKeyConfigurationKey] = "",
    };
}

public class KeyBootstrapTests(FirstStartServerFixture server) : IClassFixture<FirstStartServerFixture>
{
    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task A_first_start_writes_a_working_admin_key_to_a_file_only_its_owner_can_read()
    {
        var path = Path.Combine(server.DataDirectory, AdminKeyBootstrap.AdminKeyFileName);
        var key = (await File.ReadAllTextAsync(path)).Trim();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/keys") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };

        using var response = await server.AnonymousClient.SendAsync(request);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var keys = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("data");
        Assert.Equal(1, keys.GetArrayLength());
        Assert.Contains("admin", keys[0].GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.DoesNotContain(server.Logs.Lines, line => line.Contains(key, StringComparison.Ordinal));
    }
}

public class KeySecrecyTests
{
    [Fact]
    public async Task No_secret_is_found_in_the_database_files_or_the_logs()
    {
        var fixture = new KeysServerFixture();
        await fixture.InitializeAsync();
        var secrets = new List<string> { fixture.AdminKey };
        try
        {
            for (var i = 0; i < 5; i++)
            {
                using var created = await fixture.Client.PostAsJsonAsync("/admin/keys", new { name = $"k{i}", scopes = new[] { "transcribe" } });
                var key = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
                secrets.Add(key);
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/audio/transcriptions")
                {
                    Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) },
                    Content = TestAudio.Form(TestAudio.NoiseWav(1), "a.wav", ("model", "whisper-tiny.en")),
                };
                using var used = await fixture.AnonymousClient.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, used.StatusCode);
            }

            using var wrong = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", secrets[1] + "x") } };
            using var refused = await fixture.AnonymousClient.SendAsync(wrong);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        finally
        {
            await fixture.DisposeAsyncKeepingData();
        }

        var files = Directory.GetFiles(fixture.DataDirectory, "lockn.db*");
        Assert.NotEmpty(files);
        var stored = string.Concat(files.Select(file => Encoding.Latin1.GetString(File.ReadAllBytes(file))));
        var logs = string.Join('\n', fixture.Logs.Lines);
        foreach (var key in secrets)
        {
            Assert.True(ApiKeySecret.TryParse(key, out _, out var secret));
            Assert.DoesNotContain(secret, stored, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, logs, StringComparison.Ordinal);
        }

        Directory.Delete(fixture.DataDirectory, recursive: true);
    }
}

public class KeysCommandTests
{
    [Fact]
    public async Task Keys_create_json_list_and_revoke_work_on_the_database()
    {
        var data = Directory.CreateTempSubdirectory("lockn-keys-cli-").FullName;
        var environment = new Dictionary<string, string> { ["LOCKN_DATA"] = data };
        try
        {
            var created = await LocknProcess.RunAsync(["keys", "create", "--name", "ci", "--scopes", "transcribe,classify", "--json"], environment);
            Assert.Equal(0, created.ExitCode);
            var json = JsonDocument.Parse(created.Stdout).RootElement;
            var id = json.GetProperty("id").GetString()!;
            Assert.True(ApiKeySecret.TryParse(json.GetProperty("key").GetString(), out _, out _));

            var listed = await LocknProcess.RunAsync(["keys", "list", "--json"], environment);
            var revoked = await LocknProcess.RunAsync(["keys", "revoke", id], environment);
            var relisted = await LocknProcess.RunAsync(["keys", "list", "--json"], environment);
            var unknown = await LocknProcess.RunAsync(["keys", "revoke", "key_nope"], environment);
            var badScope = await LocknProcess.RunAsync(["keys", "create", "--name", "x", "--scopes", "sing"], environment);

            Assert.Equal(0, listed.ExitCode);
            Assert.Contains(id, listed.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain(json.GetProperty("key").GetString()!, listed.Stdout, StringComparison.Ordinal);
            Assert.Equal(0, revoked.ExitCode);
            Assert.NotEqual(JsonValueKind.Null, JsonDocument.Parse(relisted.Stdout).RootElement[0].GetProperty("revoked_at").ValueKind);
            Assert.Equal(1, unknown.ExitCode);
            Assert.Equal(2, badScope.ExitCode);
            Assert.Contains("sing", badScope.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
