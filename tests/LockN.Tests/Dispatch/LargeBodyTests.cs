using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace LockN.Tests.Dispatch;

/// <summary>A 40 MB base64 image passes through to the backend byte for byte, without being held whole on the way.</summary>
[Collection(typeof(Transcription.SlotDisciplineCollection))]
public class LargeBodyTests(DispatchServerFixture server, ITestOutputHelper output) : IClassFixture<DispatchServerFixture>
{
    [Fact]
    public async Task Forty_megabyte_image_request_reaches_the_backend_intact_without_being_held_in_memory()
    {
        var path = Path.Combine(Path.GetTempPath(), "lockn-large-body-" + Guid.NewGuid().ToString("N") + ".json");
        try
        {
            // A first, smaller request through the same path (spooled to a file too) warms connections and pools.
            WriteImageRequest(path, "warm-up", imageBytes: 3 * 1024 * 1024);
            Assert.Equal(HttpStatusCode.OK, await PostFileAsync(path));
            File.Delete(path);

            var marker = "large-" + Guid.NewGuid().ToString("N");
            var size = WriteImageRequest(path, marker, imageBytes: 30 * 1024 * 1024);
            // What reaches the backend is the body as sent with the one edit LockN makes to it: every chat request
            // streams upstream, with usage, inserted before the body's closing brace.
            var sent = File.ReadAllBytes(path);
            var streamEdit = Encoding.UTF8.GetBytes(",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
            var expectedHash = Convert.ToHexStringLower(SHA256.HashData([.. sent.AsSpan(0, sent.Length - 1), .. streamEdit, (byte)'}']));
            var expectedSize = size + streamEdit.Length;

            // Everything here runs in this process (client, LockN, stand-in), so its allocations bound LockN's.
            GC.Collect();
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var status = await PostFileAsync(path);
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

            Assert.Equal(HttpStatusCode.OK, status);
            var generation = server.StandIn.Generations.Single(g => g.BodyBytes == expectedSize && g.BodySha256 == expectedHash);
            output.WriteLine($"{size / 1e6:0.0} MB body forwarded intact; {allocated / 1e6:0.0} MB allocated in the whole process during the request");
            Assert.Equal(expectedSize, generation.BodyBytes);
            Assert.InRange(allocated, 0, size / 10);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private async Task<HttpStatusCode> PostFileAsync(string path)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.Asynchronous);
        using var content = new StreamContent(file, 64 * 1024);
        content.Headers.ContentType = new("application/json");
        using var response = await server.Client.PostAsync("/v1/chat/completions", content);
        return response.StatusCode;
    }

    /// <summary>Writes a chat request with one huge image part, model last (as the OpenAI SDK orders it).</summary>
    private static long WriteImageRequest(string path, string marker, int imageBytes)
    {
        using var file = new FileStream(path, FileMode.CreateNew);
        file.Write(Encoding.UTF8.GetBytes($"{{\"messages\":[{{\"role\":\"user\",\"content\":[{{\"type\":\"text\",\"text\":\"{marker}\"}},{{\"type\":\"image_url\",\"image_url\":{{\"url\":\"data:image/jpeg;base64,"));
        var chunk = new byte[3 * 64 * 1024];
        for (var written = 0; written < imageBytes; written += chunk.Length)
        {
            RandomNumberGenerator.Fill(chunk);
            file.Write(Encoding.ASCII.GetBytes(Convert.ToBase64String(chunk)));
        }

        file.Write(Encoding.UTF8.GetBytes($"\"}}}}]}}],\"max_tokens\":1,\"model\":\"{DispatchServerFixture.Model}\"}}"));
        return file.Length;
    }
}
