namespace LockN.Dispatch;

/// <summary>
/// Starts the <c>always</c> managed servers with LockN, unloads those idle for their <c>IdleUnloadSeconds</c>, and stops
/// every one when LockN stops (SIGTERM, then SIGKILL after <c>Dispatch:StopGraceSeconds</c>).
/// </summary>
internal sealed partial class ManagedServerSupervisor(BackendRegistry registry, TimeProvider time, ILogger<ManagedServerSupervisor> logger) : BackgroundService
{
    private static readonly TimeSpan IdleCheck = TimeSpan.FromMilliseconds(250);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var servers = registry.ManagedServers.ToArray();
        if (servers.Length == 0)
        {
            return;
        }

        await Task.WhenAll(servers.Where(s => !s.Options.OnDemand).Select(s => s.StartAsync(byAdmin: false, stoppingToken)));
        using var timer = new PeriodicTimer(IdleCheck, time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            foreach (var server in servers)
            {
                var idleLimit = TimeSpan.FromSeconds(server.Options.IdleUnloadSeconds);
                if (idleLimit > TimeSpan.Zero && server.State == ManagedServerState.Running && !server.Backend.HasWork && server.Backend.IdleFor >= idleLimit)
                {
                    LogUnloading(logger, server.Options.Name, idleLimit.TotalSeconds);
                    await server.StopAsync($"unloaded after {idleLimit.TotalSeconds:0.#} s without requests (IdleUnloadSeconds)", stoppingToken);
                }
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await Task.WhenAll(registry.ManagedServers.Select(s => s.StopAsync("LockN is shutting down", CancellationToken.None)));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Unloading managed server {Name}: idle for {Seconds} s")]
    private static partial void LogUnloading(ILogger logger, string name, double seconds);
}
