using LockN.Audio;
using LockN.Classification;
using LockN.Dispatch;
using LockN.Health;
using LockN.Http;
using LockN.Keys;
using LockN.Models;
using LockN.Scheduling;
using LockN.Storage;
using LockN.Streaming;
using LockN.Transcription;
using LockN.Usage;
using LockN.WebConsole;

namespace LockN.Hosting;

/// <summary>Builds the LockN web service. Reads like a table of contents: one line per feature.</summary>
internal static class LockNServer
{
    /// <param name="configureServices">Runs after every feature is added, so tests can replace a service (e.g. the clock).</param>
    public static WebApplication Build(IDictionary<string, string?>? overrides = null, Action<ILoggingBuilder>? configureLogging = null, Action<IServiceCollection>? configureServices = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
            // The console's static files are found by this name (lockn.staticwebassets.*.json), also when the host
            // process is another program (the tests, the bench).
            ApplicationName = "lockn",
            Args = [],
        });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddLockNSources(overrides);
        configureLogging?.Invoke(builder.Logging);

        // The console's files: from the build's manifest when run from a build, from wwwroot when published.
        builder.WebHost.UseStaticWebAssets();
        builder.WebHost.UseUrls(builder.Configuration[LockNConfiguration.UrlsKey] is { Length: > 0 } urls ? urls : LockNConfiguration.DefaultUrls);
        Directory.CreateDirectory(LockNConfiguration.DataDirectory(builder.Configuration));

        builder.Services.AddHttpLimits(builder.Configuration); // Kestrel's connection, timeout and data-rate limits
        builder.Services.AddScheduling(); // the one clock and the registry of every model's slots and queue
        builder.Services.AddStorage(builder.Configuration);
        builder.Services.AddUsage(builder.Configuration);
        builder.Services.AddOpenAiErrors();
        builder.Services.AddKeys(builder.Configuration);
        builder.Services.AddAudioDecoding(builder.Configuration).AddAudioSpool();
        builder.Services.AddTranscription(builder.Configuration);
        builder.Services.AddClassification(builder.Configuration);
        builder.Services.AddStreaming(builder.Configuration);
        builder.Services.AddDispatch(builder.Configuration);
        builder.Services.AddConsole(builder.Configuration); // the web pages at /, signed in with a key
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        app.UseOpenAiErrors();
        app.UseWebSockets();
        app.UseAuthentication();
        app.UseUsageRecording(); // after authentication (the key is known), before refusals (401, 403, 429 are recorded too)
        app.UseAuthorization();
        app.UseRateLimiter();

        app.MapHealthApi(); // open: load balancers and orchestrators probe it without a key
        app.MapV1Group(ApiKeyScopes.AnyKey).MapModelsApi();
        app.MapV1Group(ApiKeyScopes.Transcribe).MapTranscriptionApi();
        app.MapV1Group(ApiKeyScopes.Classify).MapClassificationApi();
        app.MapV1Group(ApiKeyScopes.Stream).MapStreamingApi();
        app.MapV1Group(ApiKeyScopes.Chat).MapDispatchApi();

        var admin = app.MapGroup("/admin").RequireAuthorization(ApiKeyScopes.Admin);
        admin.MapKeysApi();
        admin.MapUsageApi();
        admin.MapBackendsApi();

        app.MapConsole();
        return app;
    }
}
