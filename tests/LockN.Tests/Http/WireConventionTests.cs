using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LockN.Streaming;
using LockN.Tests.Dispatch;
using Microsoft.AspNetCore.Routing;

namespace LockN.Tests.Http;

/// <summary>
/// Every JSON LockN writes is snake_case. The routes are read from the running server, so a route added without a
/// request here fails the test instead of escaping it.
/// </summary>
public class WireConventionTests(DispatchServerFixture server, ITestOutputHelper output) : IClassFixture<DispatchServerFixture>
{
    [Fact]
    public async Task Every_json_route_writes_only_lower_case_property_names()
    {
        var routes = server.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .Where(e => LockN.Http.OpenAiErrorHandling.IsJsonApi(new Microsoft.AspNetCore.Http.PathString("/" + e.RoutePattern.RawText?.TrimStart('/')))) // the console's pages are HTML
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => $"{m} {e.RoutePattern.RawText}"))
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();
        var exercised = new HashSet<string>(StringComparer.Ordinal);
        var checkedBodies = 0;

        async Task CheckAsync(string route, HttpResponseMessage response)
        {
            using (response)
            {
                exercised.Add(route);
                var body = await response.Content.ReadAsStringAsync();
                output.WriteLine($"{route} → {(int)response.StatusCode} {response.Content.Headers.ContentType}");
                if (response.Content.Headers.ContentType?.MediaType == "text/event-stream")
                {
                    foreach (var line in body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
                    {
                        AssertSnakeCase(route, JsonDocument.Parse(line[6..]).RootElement);
                        checkedBodies++;
                    }

                    return;
                }

                Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
                AssertSnakeCase(route, JsonDocument.Parse(body).RootElement);
                checkedBodies++;
            }
        }

        HttpContent Audio(string path, params (string Name, string Value)[] fields)
        {
            var form = new MultipartFormDataContent { { new ByteArrayContent(File.ReadAllBytes(path)), "file", Path.GetFileName(path) } };
            foreach (var (name, value) in fields)
            {
                form.Add(new StringContent(value), name);
            }

            return form;
        }

        await CheckAsync("GET /health/live", await server.AnonymousClient.GetAsync("/health/live"));
        await CheckAsync("GET /health/ready", await server.AnonymousClient.GetAsync("/health/ready"));
        await CheckAsync("GET /v1/models", await server.Client.GetAsync("/v1/models"));
        await CheckAsync("GET /v1/models/{id}", await server.Client.GetAsync("/v1/models/whisper-1"));
        await CheckAsync("POST /v1/audio/transcriptions", await server.Client.PostAsync("/v1/audio/transcriptions",
            Audio(TestAssets.JfkWav, ("model", "whisper-1"), ("response_format", "verbose_json"), ("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment"))));
        await CheckAsync("POST /v1/audio/transcriptions", await server.Client.PostAsync("/v1/audio/transcriptions",
            Audio(TestAssets.JfkWav, ("model", "whisper-1"), ("stream", "true"))));
        // Its answer has the transcription's shape; an English-only model's refusal spares loading a second model.
        await CheckAsync("POST /v1/audio/translations", await server.Client.PostAsync("/v1/audio/translations",
            Audio(TestAssets.JfkWav, ("model", "whisper-1"), ("response_format", "verbose_json"))));
        await CheckAsync("POST /v1/audio/classifications", await server.Client.PostAsync("/v1/audio/classifications",
            Audio(Path.Combine(TestAssets.Esc50, "4-182395-A-0.wav"), ("events", "true"), ("timeline", "true"))));
        foreach (var path in new[] { "/v1/chat/completions", "/v1/completions", "/v1/embeddings" })
        {
            // The answers are the backend's own JSON, relayed untouched; LockN's own words here are its errors.
            await CheckAsync("POST " + path, await server.Client.PostAsync(path,
                new StringContent("{\"model\":\"no-such-model\",\"messages\":[]}", Encoding.UTF8, "application/json")));
        }

        using (var created = await server.Client.PostAsJsonAsync("/admin/keys", new { name = "wire", scopes = new[] { "transcribe" } }))
        {
            var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();
            await CheckAsync("POST /admin/keys", await server.Client.PostAsJsonAsync("/admin/keys", new { name = "wire2", scopes = new[] { "classify" }, expires_in_days = 1 }));
            await CheckAsync("GET /admin/keys", await server.Client.GetAsync("/admin/keys"));
            await CheckAsync("GET /admin/keys/{id}", await server.Client.GetAsync($"/admin/keys/{id}"));
            await CheckAsync("DELETE /admin/keys/{id}", await server.Client.DeleteAsync($"/admin/keys/{id}"));
        }

        await CheckAsync("GET /admin/usage", await server.Client.GetAsync("/admin/usage?group_by=model"));
        await CheckAsync("POST /admin/backends", await server.Client.PostAsJsonAsync("/admin/backends", new { name = "wire", url = "http://127.0.0.1:9", models = new[] { "wire-model" } }));
        await CheckAsync("GET /admin/backends", await server.Client.GetAsync("/admin/backends"));
        await CheckAsync("GET /admin/backends/{name}", await server.Client.GetAsync("/admin/backends/wire"));
        await CheckAsync("GET /admin/backends/{name}/logs", await server.Client.GetAsync("/admin/backends/wire/logs")); // a URL backend: 400 not_managed
        await CheckAsync("POST /admin/backends/{name}/{action}", await server.Client.PostAsync("/admin/backends/wire/drain", null));
        await CheckAsync("DELETE /admin/backends/{name}", await server.Client.DeleteAsync("/admin/backends/wire"));

        // Errors of the pipeline itself: no key, unknown route, wrong method.
        await CheckAsync("GET /v1/models", await server.AnonymousClient.GetAsync("/v1/models"));
        await CheckAsync("GET /v1/models", await server.Client.GetAsync("/v1/no-such-route"));
        await CheckAsync("GET /v1/models", await server.Client.DeleteAsync("/v1/models"));

        // The live stream's events.
        await using (var stream = await StreamClient.ConnectAsync(server.BaseAddress, server.AdminKey, CancellationToken.None))
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            await stream.UpdateSessionAsync(new { model = "whisper-1", classify = true }, timeout.Token);
            await stream.SendTextAsync("{\"type\":\"no.such.event\"}", timeout.Token);
            await stream.SendAudioAsync(new byte[32000], timeout.Token);
            await stream.CommitAsync(timeout.Token);
            await stream.CloseOutputAsync(timeout.Token);
            await foreach (var received in stream.ReadEventsAsync(timeout.Token))
            {
                AssertSnakeCase("GET /v1/audio/stream", received.Body);
                checkedBodies++;
            }

            exercised.Add("GET /v1/audio/stream");
        }

        output.WriteLine($"{checkedBodies} JSON bodies checked over {exercised.Count} routes");
        Assert.Empty(routes.Except(exercised));
    }

    [Theory]
    [InlineData("{\"name\":\"ci\",\"scopes\":5}", "scopes")]
    [InlineData("{\"name\":7,\"scopes\":[\"transcribe\"]}", "name")]
    [InlineData("{\"name\":\"ci\",\"scopes\":[\"transcribe\"],\"expires_in_days\":\"soon\"}", "expires_in_days")]
    [InlineData("{\"name\":\"ci\",\"scopes\":[1]}", "scopes")]
    [InlineData("{\"name\":\"ci\",\"scopes\":[\"transcribe\"],\"requests_per_minute\":1.5}", "requests_per_minute")]
    public async Task A_wrong_type_is_a_400_naming_the_field_without_dotnet_words(string body, string param)
    {
        using var response = await server.Client.PostAsync("/admin/keys", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        output.WriteLine(text);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        AssertNoDotNetWords(error.GetProperty("message").GetString()!);
    }

    [Theory]
    [InlineData("{\"name\":\"ci\",")]
    [InlineData("not json")]
    [InlineData("")]
    public async Task A_body_that_is_not_json_is_a_400_without_dotnet_words(string body)
    {
        using var response = await server.Client.PostAsync("/admin/keys", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        output.WriteLine(text);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        AssertNoDotNetWords(JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("message").GetString()!);
    }

    [Fact]
    public async Task Paths_outside_the_json_apis_are_not_given_openai_error_bodies()
    {
        using var response = await server.AnonymousClient.GetAsync("/no-such-page");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.NotEqual("application/json", response.Content.Headers.ContentType?.MediaType);
    }

    private static void AssertNoDotNetWords(string message)
    {
        foreach (var word in new[] { "System.", "LockN.", "Exception", "`1", "Path: $", " at ", ".cs:" })
        {
            Assert.DoesNotContain(word, message, StringComparison.Ordinal);
        }
    }

    private static void AssertSnakeCase(string route, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    Assert.False(property.Name.Any(char.IsUpper), $"{route}: property '{property.Name}' is not snake_case");
                    AssertSnakeCase(route, property.Value);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    AssertSnakeCase(route, item);
                }

                break;
        }
    }
}
