using System.CommandLine;
using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using LockN.Hosting;
using LockN.Http;
using LockN.Storage;
using LockN.Usage;
using Spectre.Console;

namespace LockN.Cli;

/// <summary>
/// <c>lockn usage [--from] [--to] [--by model|key|day] [--json]</c>: the usage ledger's totals, from the database
/// the server is configured with (LOCKN_DB, or the SQLite file in LOCKN_DATA).
/// </summary>
internal static class UsageCommand
{
    public static Command Create()
    {
        var from = new Option<string?>("--from") { Description = "Start: ISO-8601 date or time (UTC unless given), or Unix seconds (default: 30 days before --to)" };
        var to = new Option<string?>("--to") { Description = "End, exclusive; a date includes that whole day (default: now)" };
        var by = new Option<string>("--by") { DefaultValueFactory = _ => "model", Description = "Group by model, key or day (UTC)" };
        by.AcceptOnlyFromAmong("model", "key", "day");
        var json = new Option<bool>("--json") { Description = "Print the report as GET /admin/usage returns it" };
        var data = CommandHost.DataOption();
        var command = new Command("usage", "Show requests, audio and tokens from the usage ledger") { from, to, by, json, data };
        command.SetAction((parse, cancellationToken) => CommandHost.RunAsync(
            new Dictionary<string, string?> { [LockNConfiguration.DataKey] = parse.GetValue(data) },
            (services, configuration) => services.AddStorage(configuration).AddUsage(configuration),
            async host =>
            {
                var (query, error) = UsageQuery.Parse(parse.GetValue(by), parse.GetValue(from), parse.GetValue(to), host.Time.GetUtcNow());
                if (error is not null)
                {
                    await Console.Error.WriteLineAsync($"lockn: {error.Message}");
                    return 2;
                }

                var database = host.Get<LockNDatabase>();
                UsageReport report;
                try
                {
                    // As the server does at start-up, so a new or older database reads as an empty ledger.
                    await host.OpenDatabaseAsync(cancellationToken);
                    report = await UsageReport.QueryAsync(database, query!, cancellationToken);
                }
                catch (Exception ex) when (ex is DbException or InvalidOperationException or IOException)
                {
                    await Console.Error.WriteLineAsync($"lockn: cannot read the usage ledger in {database.Description}: {ex.GetBaseException().Message}");
                    return 1;
                }

                if (parse.GetValue(json))
                {
                    Console.Out.WriteLine(JsonSerializer.Serialize(report, LockNJson.Context.UsageReport));
                    return 0;
                }

                Write(report);
                return 0;
            }));
        return command;
    }

    private static void Write(UsageReport report)
    {
        var table = new Table { Border = TableBorder.Simple, ShowFooters = report.Data.Count > 1 };
        table.AddColumn(new TableColumn(report.GroupBy).Footer("total"));
        AddNumberColumn(table, "requests", report.Data.Sum(r => r.Requests));
        table.AddColumn(new TableColumn("audio minutes").RightAligned().Footer(Minutes(report.Data.Sum(r => r.AudioSeconds))));
        AddNumberColumn(table, "tokens in", report.Data.Sum(r => r.TokensIn));
        AddNumberColumn(table, "tokens out", report.Data.Sum(r => r.TokensOut));
        AddNumberColumn(table, "errors", report.Data.Sum(r => r.Errors));
        foreach (var row in report.Data)
        {
            table.AddRow(Markup.Escape(row.Group ?? "(none)"), Count(row.Requests), Minutes(row.AudioSeconds), Count(row.TokensIn), Count(row.TokensOut), Count(row.Errors));
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        if (Console.IsOutputRedirected)
        {
            // A pipe has no width; keep each row on one line rather than wrap at 80 columns.
            console.Profile.Width = 240;
        }

        console.Write(table);
        console.WriteLine($"{report.From} to {report.To} (UTC), {report.Data.Sum(r => r.Requests)} requests");
    }

    private static void AddNumberColumn(Table table, string header, long total) =>
        table.AddColumn(new TableColumn(header).RightAligned().Footer(Count(total)));

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Minutes(double seconds) => (seconds / 60).ToString("0.00", CultureInfo.InvariantCulture);
}
