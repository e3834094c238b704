using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.Components.Server;

namespace LockN.WebConsole;

/// <summary>
/// Checks an open console page's session again every <c>Keys:CacheSeconds</c>: a live page (one long WebSocket) would
/// otherwise keep the rights its key had when the page opened, after the key was revoked.
/// </summary>
internal sealed class ConsoleAuthenticationStateProvider(ConsoleSessions sessions, ILoggerFactory loggers)
    : RevalidatingServerAuthenticationStateProvider(loggers)
{
    protected override TimeSpan RevalidationInterval => sessions.RecheckAfter < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : sessions.RecheckAfter;

    protected override Task<bool> ValidateAuthenticationStateAsync(AuthenticationState authenticationState, CancellationToken cancellationToken) =>
        authenticationState.User.Identity?.IsAuthenticated == true ? sessions.IsValidAsync(authenticationState.User, cancellationToken) : Task.FromResult(true);
}
