using LockN.Storage;
using Microsoft.AspNetCore.Mvc;

namespace LockN.Usage;

/// <summary><c>GET /admin/usage?from=&amp;to=&amp;group_by=model|key|day</c>: totals from the usage ledger.</summary>
internal static class UsageApi
{
    /// <summary>Maps GET /usage into the group it is given (the admin-only /admin group): no authorization of its own.</summary>
    public static RouteHandlerBuilder MapUsageApi(this IEndpointRouteBuilder routes) =>
        routes.MapGet("/usage", async Task<IResult> (
            [FromQuery(Name = "group_by")] string? groupBy,
            [FromQuery] string? from,
            [FromQuery] string? to,
            LockNDatabase database,
            TimeProvider time,
            CancellationToken cancellationToken) =>
        {
            var (query, error) = UsageQuery.Parse(groupBy, from, to, time.GetUtcNow());
            if (error is not null)
            {
                return error.ToResult();
            }

            return TypedResults.Ok(await UsageReport.QueryAsync(database, query!, cancellationToken));
        });
}
