using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace LockN.Storage;

// Used only by `dotnet ef migrations add … --context SqliteLockNDb|PostgresLockNDb`; the connection is never opened.
internal sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<SqliteLockNDb>
{
    public SqliteLockNDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteLockNDb>().UseSqlite("Data Source=design-time.db").Options);
}

internal sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresLockNDb>
{
    public PostgresLockNDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresLockNDb>().UseNpgsql("Host=design-time").Options);
}
