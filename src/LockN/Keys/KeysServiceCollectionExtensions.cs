using LockN.Hosting;
using Microsoft.AspNetCore.Authentication;

namespace LockN.Keys;

public static class KeysServiceCollectionExtensions
{
    /// <summary>API-key authentication, one authorization policy per scope, per-key rate limits and the admin bootstrap.</summary>
    public static IServiceCollection AddKeys(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<KeysOptions>(configuration, KeysOptions.Section);
        services.AddSingleton(TimeProvider.System);
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
