using LockN.Hosting;
using Microsoft.Extensions.Options;

namespace LockN.Keys;

/// <summary>
/// Makes sure an operator can get in: seeds LOCKN_ADMIN_KEY when it is set, and otherwise, on a first start with no
/// keys at all, creates an admin key, prints it once and writes it to a 0600 file in the data directory.
/// Also writes last-used times in batches while the server runs.
/// </summary>
internal sealed partial class AdminKeyBootstrap(
    ApiKeyStore store, IConfiguration configuration, IOptions<KeysOptions> options, TimeProvider time, ILogger<AdminKeyBootstrap> logger) : BackgroundService
{
    public const string AdminKeyFileName = "admin-key";

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        if (configuration[KeysOptions.AdminKeyConfigurationKey] is { Length: > 0 } seeded)
        {
            if (!ApiKeySecret.TryParse(seeded, out _, out _))
            {
                throw new InvalidOperationException("LOCKN_ADMIN_KEY is not a LockN key (lk_ + 10 characters + _ + 43 characters); create one with `lockn keys create --json`.");
            }

            var request = new ApiKeyRequest("admin (LOCKN_ADMIN_KEY)", [ApiKeyScopes.Admin, .. ApiKeyScopes.All.Where(s => s != ApiKeyScopes.Admin)], null, null, null);
            if (await store.ImportAsync(seeded, request, cancellationToken))
            {
                LogSeeded(logger);
            }
        }
        else if (!await store.AnyAsync(cancellationToken))
        {
            var created = await store.CreateAsync(new ApiKeyRequest("admin (first start)", ApiKeyScopes.All, null, null, null), cancellationToken);
            var path = Path.Combine(LockNConfiguration.DataDirectory(configuration), AdminKeyFileName);
            var fileOptions = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            await using (var file = new FileStream(path, fileOptions))
            await using (var writer = new StreamWriter(file))
            {
                await writer.WriteLineAsync(created.Key);
            }

            // Printed on the console, never through the logger, so it reaches the operator and not the log store.
            await Console.Out.WriteLineAsync($"""

                LockN created an admin API key (shown once, also saved to {path} with mode 0600):
                  {created.Key}
                Create scoped keys with POST /admin/keys or `lockn keys create`.

                """);
            LogCreated(logger, created.Id, path);
        }

        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.LastUsedFlushSeconds), time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await FlushAsync(cancellationToken);
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        try
        {
            await store.FlushLastUsedAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFlushFailed(logger, ex.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Seeded the admin key from LOCKN_ADMIN_KEY")]
    private static partial void LogSeeded(ILogger logger);

    [LoggerMessage(Level = LogLevel.Warning, Message = "No API keys existed: created admin key {KeyId}; it was printed once and saved to {Path}")]
    private static partial void LogCreated(ILogger logger, string keyId, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not write API key last-used times: {Reason}")]
    private static partial void LogFlushFailed(ILogger logger, string reason);
}
