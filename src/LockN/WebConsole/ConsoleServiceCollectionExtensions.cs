using LockN.Hosting;
using LockN.Keys;
using LockN.WebConsole.Components;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.FluentUI.AspNetCore.Components;

namespace LockN.WebConsole;

/// <summary>LockN's own web pages (Blazor, interactive server rendering, Fluent UI), served at <c>/</c>.</summary>
internal static class ConsoleServiceCollectionExtensions
{
    // No inline script, no eval; Fluent UI's web components set styles inline. ws: for the live pages' circuit.
    private const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
        "media-src 'self' blob:; connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; base-uri 'self'; " +
        "form-action 'self'; frame-ancestors 'none'";

    private const string ByPath = "LockN.ByPath";

    public static IServiceCollection AddConsole(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddFluentUIComponents();

        // The cookie's keys live in the data directory, so sessions survive a restart; readable by this user only.
        var keyRing = Directory.CreateDirectory(Path.Combine(LockNConfiguration.DataDirectory(configuration), "console-keys"));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyRing.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        services.AddDataProtection().SetApplicationName("LockN").PersistKeysToFileSystem(keyRing);
        services.AddSingleton<ConsoleSessions>();
        services.AddSingleton<OverviewFeed>();
        // API paths authenticate by key, every other path (pages, the live pages' circuit) by the console's cookie.
        services.AddAuthentication(options => options.DefaultScheme = ByPath)
            .AddPolicyScheme(ByPath, "API key for the API, the console's session for its pages", scheme =>
                scheme.ForwardDefaultSelector = context => Http.OpenAiErrorHandling.IsJsonApi(context.Request.Path) ? ApiKeyAuthenticationHandler.SchemeName : ConsoleSessions.Scheme);
        services.AddAuthentication().AddCookie(ConsoleSessions.Scheme, cookie =>
        {
            cookie.Cookie.Name = "lockn_console";
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Strict;
            cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest; // Secure whenever LockN is served over HTTPS
            cookie.LoginPath = "/sign-in";
            cookie.AccessDeniedPath = "/denied";
            cookie.ReturnUrlParameter = "returnUrl";
            cookie.ExpireTimeSpan = TimeSpan.FromHours(12);
            cookie.SlidingExpiration = true;
            cookie.Events.OnValidatePrincipal = async context =>
            {
                var sessions = context.HttpContext.RequestServices.GetRequiredService<ConsoleSessions>();
                if (context.Principal is null || !await sessions.IsValidAsync(context.Principal, context.HttpContext.RequestAborted))
                {
                    context.RejectPrincipal();
                    await context.HttpContext.SignOutAsync(ConsoleSessions.Scheme);
                }
            };
        });
        services.AddAuthorizationBuilder()
            .AddPolicy(ConsoleSessions.SignedIn, policy => policy.AddAuthenticationSchemes(ConsoleSessions.Scheme).RequireAuthenticatedUser())
            .AddPolicy(ConsoleSessions.Admin, policy => policy.AddAuthenticationSchemes(ConsoleSessions.Scheme).RequireAuthenticatedUser().RequireClaim(ApiKeyClaims.Scope, ApiKeyScopes.Admin));
        services.AddCascadingAuthenticationState();
        services.AddScoped<AuthenticationStateProvider, ConsoleAuthenticationStateProvider>();
        return services;
    }

    public static WebApplication MapConsole(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            if (!Http.OpenAiErrorHandling.IsJsonApi(context.Request.Path))
            {
                context.Response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
                context.Response.Headers.XContentTypeOptions = "nosniff";
                context.Response.Headers["Referrer-Policy"] = "same-origin";
            }

            await next(context);
        });
        app.UseAntiforgery();
        app.MapStaticAssets();
        // Our own Content-Security-Policy (above) already forbids framing.
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode(server => server.ContentSecurityFrameAncestorsPolicy = null);
        app.MapPost("/sign-out", async (HttpContext context) =>
        {
            await context.SignOutAsync(ConsoleSessions.Scheme);
            return Results.LocalRedirect("/sign-in");
        }).WithMetadata(new RequireAntiforgeryTokenAttribute()).AllowAnonymous();
        return app;
    }
}
