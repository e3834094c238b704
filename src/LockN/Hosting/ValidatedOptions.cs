using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace LockN.Hosting;

/// <summary>
/// Binds an options record from its configuration section and validates it at start-up, with each failure
/// naming the full configuration key (e.g. <c>Transcription:Slots must be between 1 and 64 (got '0')</c>).
/// </summary>
internal static partial class ValidatedOptions
{
    public static OptionsBuilder<T> AddValidatedOptions<T>(this IServiceCollection services, IConfiguration configuration, string section)
        where T : class
    {
        services.AddSingleton<IValidateOptions<T>>(new KeyNamingValidator<T>(section, configuration));
        return services.AddOptions<T>()
            .Bind(configuration.GetSection(section), binder => binder.ErrorOnUnknownConfiguration = false)
            .ValidateOnStart();
    }

    /// <summary>
    /// Binds and validates every options record registered with <see cref="AddValidatedOptions{T}"/>, as a host
    /// does when it starts; throws what <see cref="Describe"/> turns into the one line a bad setting is reported in.
    /// </summary>
    public static void ValidateNow(IServiceProvider services) => services.GetService<IStartupValidator>()?.Validate();

    /// <summary>
    /// The one line naming the key(s) of a bad setting, in LockN's words (no .NET type names), for serve and every
    /// other command alike; null when <paramref name="exception"/> is not a bad setting.
    /// </summary>
    public static string? Describe(Exception exception) => exception switch
    {
        OptionsValidationException invalid => string.Join("; ", invalid.Failures),
        AggregateException { InnerExceptions.Count: > 0 } many when many.InnerExceptions.All(e => Describe(e) is not null) =>
            string.Join("; ", many.InnerExceptions.Select(e => Describe(e))),
        InvalidOperationException failed when BindingFailure().Match(failed.Message) is { Success: true } match =>
            $"{match.Groups["key"].Value} must be {ExpectedValue.Describe(Type.GetType(match.Groups["type"].Value))} (got '{match.Groups["value"].Value}')",
        _ => null,
    };

    // The configuration binder's words for a value it cannot convert; it names the key, and the .NET type we translate.
    [GeneratedRegex(@"^Failed to convert configuration value (?:'(?<value>.*)' )?at '(?<key>[^']+)' to type '(?<type>[^']+)'", RegexOptions.Singleline)]
    private static partial Regex BindingFailure();

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
                var message = (result.ErrorMessage ?? "is invalid").Replace($"The field {member} ", "", StringComparison.Ordinal).TrimEnd('.');
                return $"{key} {message} (got '{configuration[key]}')";
            });
            return ValidateOptionsResult.Fail(failures);
        }
    }
}
