using Microsoft.EntityFrameworkCore;

namespace LockN.Storage;

/// <summary>
/// The keys, the usage ledger and the backends added at run time. One model, two providers: each has its own subclass so that its migrations
/// (generated for its SQL dialect) live apart, in Storage/Migrations/Sqlite and Storage/Migrations/Postgres.
/// </summary>
public abstract class LockNDb(DbContextOptions options) : DbContext(options)
{
    public DbSet<StoredApiKey> ApiKeys => Set<StoredApiKey>();

    public DbSet<UsageRecord> Usage => Set<UsageRecord>();

    public DbSet<StoredBackend> Backends => Set<StoredBackend>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<StoredApiKey>(key =>
        {
            key.ToTable("api_keys");
            key.HasKey(k => k.Id);
            key.Property(k => k.Id).HasMaxLength(40);
            key.Property(k => k.Name).HasMaxLength(200);
            key.Property(k => k.Prefix).HasMaxLength(40);
            key.Property(k => k.HashScheme).HasMaxLength(20);
            key.Property(k => k.Scopes).HasMaxLength(200);
            key.HasIndex(k => k.Prefix).IsUnique();
        });

        modelBuilder.Entity<UsageRecord>(usage =>
        {
            usage.ToTable("usage");
            usage.HasKey(u => u.Id);
            usage.Property(u => u.KeyId).HasMaxLength(40);
            usage.Property(u => u.Endpoint).HasMaxLength(100);
            usage.Property(u => u.Model).HasMaxLength(200);
            usage.Property(u => u.Node).HasMaxLength(100);
            usage.HasIndex(u => u.At);
            usage.HasIndex(u => u.JournalId).IsUnique();
        });

        modelBuilder.Entity<StoredBackend>(backend =>
        {
            backend.ToTable("backends");
            backend.HasKey(b => b.Name);
            backend.Property(b => b.Name).HasMaxLength(100);
            backend.Property(b => b.Url).HasMaxLength(2000);
            backend.Property(b => b.Models).HasMaxLength(4000);
        });

        // Snake-case columns so the tables read naturally in psql and sqlite3.
        foreach (var entity in modelBuilder.Model.GetEntityTypes())
        {
            foreach (var property in entity.GetProperties())
            {
                property.SetColumnName(string.Concat(property.Name.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + char.ToLowerInvariant(c) : char.ToLowerInvariant(c).ToString())));
            }
        }
    }
}

public sealed class SqliteLockNDb(DbContextOptions<SqliteLockNDb> options) : LockNDb(options);

public sealed class PostgresLockNDb(DbContextOptions<PostgresLockNDb> options) : LockNDb(options);
