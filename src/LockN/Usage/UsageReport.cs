using System.Globalization;
using System.Linq.Expressions;
using System.Text.Json.Serialization;
using LockN.Http;
using LockN.Storage;
using Microsoft.EntityFrameworkCore;

namespace LockN.Usage;

internal enum UsageGrouping
{
    Model,
    Key,
    Day,
}

/// <summary>
/// Which totals to report: grouped by model, key or UTC day, over [<see cref="From"/>, <see cref="To"/>).
/// Parsed from the same words by <c>GET /admin/usage</c> and <c>lockn usage</c>.
/// </summary>
internal sealed record UsageQuery(UsageGrouping GroupBy, DateTimeOffset From, DateTimeOffset To)
{
    public static readonly TimeSpan DefaultSpan = TimeSpan.FromDays(30);

    private static readonly string[] TimeFormats =
    [
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
        "yyyy-MM-dd'T'HH:mm:ssK",
        "yyyy-MM-dd'T'HH:mmK",
    ];

    /// <summary>
    /// <paramref name="from"/> and <paramref name="to"/> are ISO-8601 times (UTC unless they say otherwise), dates
    /// (<paramref name="to"/> as a date includes that whole day) or Unix seconds; by default the 30 days up to now.
    /// </summary>
    public static (UsageQuery? Query, ApiError? Error) Parse(string? groupBy, string? from, string? to, DateTimeOffset now)
    {
        UsageGrouping? parsed = groupBy?.ToLowerInvariant() switch
        {
            null or "" or "model" => UsageGrouping.Model,
            "key" => UsageGrouping.Key,
            "day" => UsageGrouping.Day,
            _ => null,
        };
        if (parsed is not { } grouping)
        {
            return (null, ApiError.BadRequest($"group_by must be model, key or day (got '{groupBy}').", "group_by", "invalid_value"));
        }

        DateTimeOffset end = now;
        if (!string.IsNullOrEmpty(to) && !TryParseInstant(to, endOfDay: true, out end))
        {
            return (null, InvalidTime("to", to));
        }

        var start = end - DateTimeOffset.MinValue > DefaultSpan ? end - DefaultSpan : DateTimeOffset.MinValue;
        if (!string.IsNullOrEmpty(from) && !TryParseInstant(from, endOfDay: false, out start))
        {
            return (null, InvalidTime("from", from));
        }

        if (start >= end)
        {
            return (null, ApiError.BadRequest($"from ({Format(start)}) must be before to ({Format(end)}).", "from", "invalid_value"));
        }

        return (new UsageQuery(grouping, start, end), null);
    }

    /// <summary>ISO-8601 in UTC, as the report shows its bounds.</summary>
    public static string Format(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFF'Z'", CultureInfo.InvariantCulture);

    private static ApiError InvalidTime(string name, string value) =>
        ApiError.BadRequest($"{name} must be an ISO-8601 date or time (2026-01-31, 2026-01-31T12:00:00Z) or Unix seconds (got '{value}').", name, "invalid_value");

    private static bool TryParseInstant(string text, bool endOfDay, out DateTimeOffset value)
    {
        value = default;
        if (text.All(char.IsAsciiDigit))
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > DateTimeOffset.MaxValue.ToUnixTimeSeconds())
            {
                return false;
            }

            value = DateTimeOffset.FromUnixTimeSeconds(seconds);
            return true;
        }

        if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            if (endOfDay && date == DateOnly.MaxValue)
            {
                return false;
            }

            value = new DateTimeOffset(endOfDay ? date.AddDays(1).ToDateTime(TimeOnly.MinValue) : date.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
            return true;
        }

        return DateTimeOffset.TryParseExact(text, TimeFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value);
    }
}

/// <summary>Totals of one group: a model, a key or a UTC day (<c>yyyy-MM-dd</c>); null when the records have none.</summary>
internal sealed record UsageTotals(
    string? Group,
    long Requests,
    double AudioSeconds,
    long TokensIn,
    long TokensOut,
    long Errors);

/// <summary>The body of <c>GET /admin/usage</c> and of <c>lockn usage --json</c>.</summary>
internal sealed record UsageReport(
    string GroupBy,
    string From,
    string To,
    IReadOnlyList<UsageTotals> Data,
    [property: JsonPropertyOrder(-1)] string Object = "list")
{
    private const long MillisecondsPerDay = 86_400_000;

    /// <summary>Totals per group, added up by the database; the busiest model or key first, days in order.</summary>
    public static async Task<UsageReport> QueryAsync(LockNDatabase database, UsageQuery query, CancellationToken cancellationToken)
    {
        await using var db = database.Open();
        var from = query.From.ToUnixTimeMilliseconds();
        var to = query.To.ToUnixTimeMilliseconds();
        var records = db.Usage.AsNoTracking().Where(u => u.At >= from && u.At < to);
        var rows = query.GroupBy switch
        {
            UsageGrouping.Model => (await TotalsAsync(records, u => u.Model, cancellationToken))
                .Select(t => t.Named(t.Key))
                .OrderByDescending(t => t.Requests).ThenBy(t => t.Group, StringComparer.Ordinal),
            UsageGrouping.Key => (await TotalsAsync(records, u => u.KeyId, cancellationToken))
                .Select(t => t.Named(t.Key))
                .OrderByDescending(t => t.Requests).ThenBy(t => t.Group, StringComparer.Ordinal),
            _ => (await TotalsAsync(records, u => u.At / MillisecondsPerDay, cancellationToken))
                .OrderBy(t => t.Key)
                .Select(t => t.Named(DateOnly.FromDateTime(DateTime.UnixEpoch.AddDays(t.Key)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))),
        };
        return new UsageReport(query.GroupBy.ToString().ToLowerInvariant(), UsageQuery.Format(query.From), UsageQuery.Format(query.To), rows.ToList());
    }

    private static Task<List<Totals<TKey>>> TotalsAsync<TKey>(IQueryable<UsageRecord> records, Expression<Func<UsageRecord, TKey>> key, CancellationToken cancellationToken) =>
        records.GroupBy(key)
            .Select(g => new Totals<TKey>
            {
                Key = g.Key,
                Requests = g.LongCount(),
                AudioSeconds = g.Sum(u => u.AudioSeconds),
                TokensIn = g.Sum(u => u.TokensIn),
                TokensOut = g.Sum(u => u.TokensOut),
                Errors = g.LongCount(u => u.StatusCode >= 400),
            })
            .ToListAsync(cancellationToken);

    private sealed class Totals<TKey>
    {
        public TKey Key { get; init; } = default!;
        public long Requests { get; init; }
        public double AudioSeconds { get; init; }
        public long TokensIn { get; init; }
        public long TokensOut { get; init; }
        public long Errors { get; init; }

        public UsageTotals Named(string? group) => new(group, Requests, AudioSeconds, TokensIn, TokensOut, Errors);
    }
}
