using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LockN.Tests.Cli;

namespace LockN.Tests.Usage;

/// <summary>
/// The usage ledger end to end, once on SQLite and once on PostgreSQL: every request leaves exactly one row after a
/// graceful stop, and <c>GET /admin/usage</c> and <c>lockn usage</c> add up to what the test did.
/// </summary>
public abstract partial class UsageLedgerTests(UsageScenario scenario)
{
    private static readonly DateTime Today = DateTime.UtcNow.Date;

    [Fact]
    public void A_graceful_stop_leaves_exactly_one_row_per_request()
    {
        Assert.Equal(25, scenario.Sent.Count);
        Assert.Equal(scenario.Sent.Count, scenario.Recorded.Count);
        Assert.Equal(
            scenario.Sent.Select(s => (s.Endpoint, s.KeyId ?? "", s.Model ?? "", s.StatusCode, Math.Round(s.AudioSeconds, 3))).Order(),
            scenario.Recorded.Select(r => (r.Endpoint, r.KeyId ?? "", r.Model ?? "", r.StatusCode, Math.Round(r.AudioSeconds, 3))).Order());
        var window = (scenario.SendingStarted.ToUnixTimeMilliseconds() - 1000, scenario.SendingEnded.ToUnixTimeMilliseconds() + 1000);
        Assert.All(scenario.Recorded, row =>
        {
            Assert.InRange(row.At, window.Item1, window.Item2);
            Assert.True(row.LatencyMs > 0, $"latency {row.LatencyMs} ms");
            Assert.Equal(0, row.TokensIn + row.TokensOut);
        });
    }

    [Fact]
    public void Transcriptions_record_the_resolved_model_and_the_decoded_seconds()
    {
        var transcribed = scenario.Recorded.Where(r => r.Endpoint == "/v1/audio/transcriptions" && r.StatusCode == 200).ToList();

        Assert.Equal(3, transcribed.Count);
        Assert.All(transcribed, r => Assert.Equal(UsageScenario.DefaultModel, r.Model));
        Assert.Equal(1.0 + 1.5 + 2.25, transcribed.Sum(r => r.AudioSeconds), 3);
    }

    [Theory]
    [InlineData("model")]
    [InlineData("key")]
    [InlineData("day")]
    public async Task Usage_report_totals_match_what_was_done(string groupBy)
    {
        var from = Today.AddDays(-45);
        var to = Today;

        var report = await GetReportAsync($"group_by={groupBy}&from={Date(from)}&to={Date(to)}");

        Assert.Equal(groupBy, report.GetProperty("group_by").GetString());
        Assert.Equal("list", report.GetProperty("object").GetString());
        Assert.Equal(from, DateTime.Parse(report.GetProperty("from").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal));
        Assert.Equal(to.AddDays(1), DateTime.Parse(report.GetProperty("to").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal));
        AssertTotals(Expected(groupBy, from, to.AddDays(1)), report, ordered: groupBy == "day");
    }

    [Fact]
    public async Task Usage_report_covers_the_last_30_days_by_default()
    {
        var report = await GetReportAsync("");

        var from = DateTime.Parse(report.GetProperty("from").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
        var to = DateTime.Parse(report.GetProperty("to").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
        Assert.Equal(TimeSpan.FromDays(30), to - from);
        Assert.InRange(to, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow);
        Assert.Equal("model", report.GetProperty("group_by").GetString());
        AssertTotals(Expected("model", from, to), report, ordered: false);
    }

    [Fact]
    public async Task Unix_seconds_and_times_bound_the_report()
    {
        // Only the rows seeded 5 and 2 days ago.
        var from = new DateTimeOffset(Today.AddDays(-5), TimeSpan.Zero);
        var to = new DateTimeOffset(Today.AddDays(-1), TimeSpan.Zero);

        var report = await GetReportAsync($"group_by=day&from={from.ToUnixTimeSeconds()}&to={to:yyyy-MM-dd'T'HH:mm:ss'Z'}");

        Assert.Equal(2, report.GetProperty("data").GetArrayLength());
        AssertTotals(Expected("day", from.UtcDateTime, to.UtcDateTime), report, ordered: true);
    }

    [Theory]
    [InlineData("group_by=week", "group_by")]
    [InlineData("group_by=1", "group_by")]
    [InlineData("from=yesterday", "from")]
    [InlineData("to=2026-13-45", "to")]
    [InlineData("from=2026-02-01&to=2026-01-01", "from")]
    public async Task A_bad_parameter_is_400_naming_it(string query, string param)
    {
        using var response = await scenario.Reader.Client.GetAsync("/admin/usage?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains(param, error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_request_without_a_key_is_recorded_with_its_refusal_and_no_key()
    {
        var refused = Assert.Single(scenario.Recorded, r => r.StatusCode == 401);

        Assert.Null(refused.KeyId);
        Assert.Equal("/v1/models", refused.Endpoint);
    }

    [Fact]
    public async Task The_usage_report_needs_an_admin_key()
    {
        using var anonymous = await scenario.Reader.AnonymousClient.GetAsync("/admin/usage");
        using var transcriber = new HttpClient { BaseAddress = scenario.Reader.BaseAddress };
        transcriber.DefaultRequestHeaders.Authorization = new("Bearer", scenario.TranscriberKey);
        using var notAdmin = await transcriber.GetAsync("/admin/usage");

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, notAdmin.StatusCode);
    }

    [Fact]
    public async Task Lockn_usage_prints_a_table_of_the_totals()
    {
        var from = Today.AddDays(-45);
        var result = await LocknProcess.RunAsync(["usage", "--from", Date(from), "--to", Date(Today)], scenario.Database.Environment);

        Assert.True(result.ExitCode == 0, result.Stderr);
        var lines = result.Stdout.Split('\n');
        var header = Cells(lines.First(l => l.Contains("requests", StringComparison.Ordinal)));
        Assert.Equal(["model", "requests", "audio minutes", "tokens in", "tokens out", "errors"], header);
        foreach (var expected in Expected("model", from, Today.AddDays(1)))
        {
            var row = lines.Select(Cells).Single(cells => cells.Length == 6 && cells[0] == (expected.Group ?? "(none)"));
            Assert.Equal(
                [expected.Requests.ToString("N0", CultureInfo.InvariantCulture), (expected.AudioSeconds / 60).ToString("0.00", CultureInfo.InvariantCulture),
                    expected.TokensIn.ToString("N0", CultureInfo.InvariantCulture), expected.TokensOut.ToString("N0", CultureInfo.InvariantCulture),
                    expected.Errors.ToString("N0", CultureInfo.InvariantCulture)],
                row[1..]);
        }
    }

    [Fact]
    public async Task Lockn_usage_json_is_what_the_api_returns()
    {
        var from = Date(Today.AddDays(-45));
        var to = Date(Today);

        var result = await LocknProcess.RunAsync(["usage", "--by", "key", "--from", from, "--to", to, "--json"], scenario.Database.Environment);

        Assert.True(result.ExitCode == 0, result.Stderr);
        using var response = await scenario.Reader.Client.GetAsync($"/admin/usage?group_by=key&from={from}&to={to}");
        var api = JsonNode.Parse(await response.Content.ReadAsStringAsync());
        Assert.True(JsonNode.DeepEquals(api, JsonNode.Parse(result.Stdout)), $"CLI: {result.Stdout}\nAPI: {api}");
    }

    [Fact]
    public async Task Lockn_usage_with_a_bad_range_fails_with_one_line()
    {
        var result = await LocknProcess.RunAsync(["usage", "--from", "2026-02-01", "--to", "2026-01-01"], scenario.Database.Environment);

        Assert.Equal(2, result.ExitCode);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.Contains("from", result.Stderr, StringComparison.Ordinal);
    }

    private async Task<JsonElement> GetReportAsync(string query)
    {
        using var response = await scenario.Reader.Client.GetAsync("/admin/usage?" + query);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    /// <summary>Totals from the rows the scenario seeded and the requests it sent, in [from, to).</summary>
    private List<Totals> Expected(string groupBy, DateTime from, DateTime to)
    {
        var rows = scenario.Seeded
            .Select(r => (At: DateTimeOffset.FromUnixTimeMilliseconds(r.At), Key: r.KeyId, r.Model, r.AudioSeconds, r.TokensIn, r.TokensOut, r.StatusCode))
            .Concat(scenario.Sent.Select(s => (s.At, Key: s.KeyId, s.Model, s.AudioSeconds, TokensIn: 0L, TokensOut: 0L, s.StatusCode)))
            .Where(r => r.At >= from && r.At < to);
        return rows
            .GroupBy(r => groupBy switch
            {
                "model" => r.Model,
                "key" => r.Key,
                _ => r.At.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            })
            .Select(g => new Totals(g.Key, g.Count(), g.Sum(r => r.AudioSeconds), g.Sum(r => r.TokensIn), g.Sum(r => r.TokensOut), g.Count(r => r.StatusCode >= 400)))
            .OrderBy(t => t.Group, StringComparer.Ordinal)
            .ToList();
    }

    private static void AssertTotals(List<Totals> expected, JsonElement report, bool ordered)
    {
        var actual = report.GetProperty("data").EnumerateArray()
            .Select(r => new Totals(
                r.GetProperty("group").GetString(),
                r.GetProperty("requests").GetInt64(),
                Math.Round(r.GetProperty("audio_seconds").GetDouble(), 6),
                r.GetProperty("tokens_in").GetInt64(),
                r.GetProperty("tokens_out").GetInt64(),
                r.GetProperty("errors").GetInt64()))
            .ToList();
        if (ordered)
        {
            Assert.Equal(expected.Select(t => t.Group), actual.Select(t => t.Group));
        }
        else
        {
            Assert.Equal(actual.OrderByDescending(t => t.Requests).Select(t => t.Requests), actual.Select(t => t.Requests));
        }

        Assert.Equal(
            expected.Select(t => t with { AudioSeconds = Math.Round(t.AudioSeconds, 6) }),
            actual.OrderBy(t => t.Group, StringComparer.Ordinal));
    }

    private static string Date(DateTime day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>The cells of one table line, whatever border characters separate them.</summary>
    private static string[] Cells(string line) =>
        [.. CellSeparator().Split(line.Trim(' ', '│', '|')).Where(c => c.Length > 0)];

    [GeneratedRegex(@"\s*[│|]\s*|\s{2,}")]
    private static partial Regex CellSeparator();

    private sealed record Totals(string? Group, long Requests, double AudioSeconds, long TokensIn, long TokensOut, long Errors);
}

public sealed class SqliteUsageLedgerTests(SqliteUsageScenario scenario) : UsageLedgerTests(scenario), IClassFixture<SqliteUsageScenario>;

public sealed class PostgresUsageLedgerTests(PostgresUsageScenario scenario) : UsageLedgerTests(scenario), IClassFixture<PostgresUsageScenario>;
