using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace LockN.Hosting;

/// <summary>
/// Binds an options record from its configuration section and validates it at start-up, with each failure
/// naming the full configuration key (e.g. <c>Transcription:Slots must be between 1 and 64 (got 0)</c>).
/// </summary>
internal static class ValidatedOptions
{
    public static OptionsBuilder<T> AddValidatedOptions<T>(this IServiceCollection services, IConfiguration configuration, string section)
        where T : class
    {
        services.AddSingleton<IValidateOptions<T>>(new KeyNamingValidator<T>(section, configuration));
        return services.AddOptions<T>()
            .Bind(configuration.GetSection(section), binder => binder.ErrorOnUnknownConfiguration = false)
            .ValidateOnStart();
    }

    private sealed class KeyNamingValidator<T>(string section, IConfiguration configuration) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var results = new List<ValidationResult>();
            if (Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true))
            {
                return ValidateOptionsResult.Success;
            }

            var failures = results.Select(result =>
            {
                var member = result.MemberNames.FirstOrDefault() ?? "?";
                var key = $"{section}:{member}";
                var message = (result.ErrorMessage ?? "is invalid").Replace($"The field {member} ", "", StringComparison.Ordinal);
                return $"{key} {message} (got '{configuration[key]}')";
            });
            return ValidateOptionsResult.Fail(failures);
        }
    }
}
