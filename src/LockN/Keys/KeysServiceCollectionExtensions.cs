using LockN.Hosting;
using Microsoft.AspNetCore.Authentication;

namespace LockN.Keys;

internal static partial class KeysServiceCollectionExtensions
{
    /// <summary>A group for /v1 endpoints that need <paramref name="scope"/>, unless Keys:Required is off.</summary>
    public static RouteGroupBuilder MapV1Group(this WebApplication app, string scope)
    {
        var group = app.MapGroup("");
        if (app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<KeysOptions>>().Value.Required)
        {
            return group.RequireAuthorization(scope);
        }

        LogKeysNotRequired(app.Logger, scope);
        return group;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Keys:Required is false: endpoints of scope {Scope} accept requests without an API key")]
    private static partial void LogKeysNotRequired(ILogger logger, string scope);

    /// <summary>API-key authentication, one authorization policy per scope, per-key rate limits and the admin bootstrap.</summary>
    public static IServiceCollection AddKeys(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<KeysOptions>(configuration, KeysOptions.Section);
        services.AddSingleton<ApiKeyHasher>();
        services.AddSingleton<ApiKeyStore>();
        services.AddSingleton<FailedAuthenticationThrottle>();
        services.AddHostedService<AdminKeyBootstrap>();
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(ApiKeyScopes.AnyKey, policy => policy.RequireAuthenticatedUser());
        foreach (var scope in ApiKeyScopes.All)
        {
            services.AddAuthorizationBuilder().AddPolicy(scope, policy => policy.RequireAuthenticatedUser().RequireClaim(ApiKeyClaims.Scope, scope));
        }

        services.AddKeyRateLimits();
        return services;
    }
}
