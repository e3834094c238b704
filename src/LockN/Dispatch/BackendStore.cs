using System.Data.Common;
using System.Text.Json;
using LockN.Http;
using LockN.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

/// <summary>
/// The URL backends added at run time, kept in the database so that every node and every restart sees them, and the
/// loop that brings this node's <see cref="BackendRegistry"/> in line with the table every <c>SyncIntervalSeconds</c>.
/// Configuration and managed backends are not stored: they belong to their node's own settings.
/// </summary>
internal sealed partial class BackendStore(
    LockNDatabase database,
    BackendRegistry registry,
    IOptions<DispatchOptions> options,
    TimeProvider time,
    ILogger<BackendStore> logger) : BackgroundService
{
    /// <summary>Adds <paramref name="backend"/>; false when a backend of that name exists (here or in the table).</summary>
    public async Task<bool> AddAsync(BackendOptions backend, CancellationToken cancellationToken)
    {
        if (registry.Find(backend.Name) is not null)
        {
            return false;
        }

        await using var db = database.Open();
        if (await db.Backends.AnyAsync(b => b.Name == backend.Name, cancellationToken))
        {
            return false;
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        db.Backends.Add(new StoredBackend
        {
            Name = backend.Name,
            Url = backend.Url,
            Models = JsonSerializer.Serialize([.. backend.Models], LockNJson.Context.StringArray),
            Slots = backend.Slots,
            QueueLength = backend.QueueLength,
            DeadlineSeconds = backend.DeadlineSeconds,
            CreatedAt = now,
            UpdatedAt = now,
        });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            return false; // another node added the same name a moment ago
        }

        await SyncAsync(cancellationToken);
        return true;
    }

    public async Task<bool> RemoveAsync(string name, CancellationToken cancellationToken)
    {
        await using var db = database.Open();
        var removed = await db.Backends.Where(b => b.Name == name).ExecuteDeleteAsync(cancellationToken) > 0;
        await SyncAsync(cancellationToken);
        return removed;
    }

    /// <summary>Drains (or resumes) a stored backend on every node; false when it is not a stored one.</summary>
    public async Task<bool> SetDrainingAsync(string name, bool draining, CancellationToken cancellationToken)
    {
        await using var db = database.Open();
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var changed = await db.Backends.Where(b => b.Name == name)
            .ExecuteUpdateAsync(set => set.SetProperty(b => b.Draining, draining).SetProperty(b => b.UpdatedAt, now), cancellationToken) > 0;
        await SyncAsync(cancellationToken);
        return changed;
    }

    /// <summary>Brings the registry in line with the table: adds new rows, removes deleted ones, follows draining.</summary>
    public async Task SyncAsync(CancellationToken cancellationToken)
    {
        await using var db = database.Open();
        var stored = await db.Backends.AsNoTracking().ToListAsync(cancellationToken);
        foreach (var row in stored)
        {
            var backend = registry.Find(row.Name);
            if (backend is null)
            {
                if (registry.TryAdd(ToOptions(row)))
                {
                    LogAdded(logger, row.Name, row.Url);
                    backend = registry.Find(row.Name);
                }
            }

            if (backend is { Source: BackendSource.Database })
            {
                if (row.Draining)
                {
                    backend.Drain();
                }
                else
                {
                    backend.Resume();
                }
            }
        }

        foreach (var gone in registry.All.Where(b => b.Source == BackendSource.Database && !stored.Any(r => string.Equals(r.Name, b.Name, StringComparison.OrdinalIgnoreCase))).ToArray())
        {
            if (registry.TryRemove(gone.Name))
            {
                LogRemoved(logger, gone.Name);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.SyncIntervalSeconds), time);
        do
        {
            try
            {
                await SyncAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is DbException or InvalidOperationException or TimeoutException)
            {
                LogSyncFailed(logger, ex.Message); // the database is away for a moment: the backends known so far stay
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private static BackendOptions ToOptions(StoredBackend row) => new()
    {
        Name = row.Name,
        Url = row.Url,
        Models = JsonSerializer.Deserialize(row.Models, LockNJson.Context.StringArray) ?? [],
        Slots = row.Slots,
        QueueLength = row.QueueLength,
        DeadlineSeconds = row.DeadlineSeconds,
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Backend {Name} ({Url}) added from the database")]
    private static partial void LogAdded(ILogger logger, string name, string url);

    [LoggerMessage(Level = LogLevel.Information, Message = "Backend {Name} removed (no longer in the database)")]
    private static partial void LogRemoved(ILogger logger, string name);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not read the run-time backends from the database: {Problem}")]
    private static partial void LogSyncFailed(ILogger logger, string problem);
}
