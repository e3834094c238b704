namespace LockN.Hosting;

/// <summary>
/// Where settings come from, lowest to highest precedence: appsettings.json beside the executable,
/// sectioned environment variables in .NET's usual form (<c>Dispatch__Backends__0__Url</c> →
/// <c>Dispatch:Backends:0:Url</c>), <c>LOCKN_*</c> environment variables (<c>LOCKN_MODELS</c> → <c>Models</c>,
/// <c>LOCKN_Transcription__Slots</c> → <c>Transcription:Slots</c>), then command-line flags.
/// </summary>
internal static class LockNConfiguration
{
    public const string UrlsKey = "Urls";
    public const string DataKey = "Data";
    public const string DefaultUrls = "http://127.0.0.1:8080";

    public static IConfigurationBuilder AddLockNSources(this IConfigurationBuilder builder, IDictionary<string, string?>? overrides = null)
    {
        builder.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true, reloadOnChange: false);
        builder.AddInMemoryCollection(SectionedEnvironmentVariables());
        builder.AddEnvironmentVariables("LOCKN_");
        if (overrides is not null)
        {
            builder.AddInMemoryCollection(overrides.Where(kv => kv.Value is not null));
        }

        return builder;
    }

    /// <summary>
    /// Unprefixed variables with a section (a "__" in the name), as every ASP.NET service reads them; plain names
    /// such as DATA or MODELS are left alone, since they may belong to something else on the machine.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, string?>> SectionedEnvironmentVariables()
    {
        foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            if (variable.Key is string name && name.Contains("__", StringComparison.Ordinal) && !name.StartsWith("LOCKN_", StringComparison.OrdinalIgnoreCase))
            {
                yield return new(name.Replace("__", ":", StringComparison.Ordinal), variable.Value as string);
            }
        }
    }

    public static IConfiguration Build(IDictionary<string, string?>? overrides = null) =>
        new ConfigurationBuilder().AddLockNSources(overrides).Build();

    /// <summary>
    /// Where a client on this machine reaches the configured server: the first of <c>Urls</c>, with a wildcard
    /// host (<c>*</c>, <c>+</c>, <c>0.0.0.0</c>, <c>[::]</c>) read as the loopback address.
    /// </summary>
    public static string LocalServerAddress(IConfiguration configuration)
    {
        var first = (configuration[UrlsKey] is { Length: > 0 } urls ? urls : DefaultUrls).Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? DefaultUrls;
        foreach (var wildcard in new[] { "://*:", "://+:", "://0.0.0.0:", "://[::]:" })
        {
            first = first.Replace(wildcard, wildcard == "://[::]:" ? "://[::1]:" : "://127.0.0.1:", StringComparison.Ordinal);
        }

        return first;
    }

    public static string DataDirectory(IConfiguration configuration) =>
        Path.GetFullPath(configuration[DataKey] is { Length: > 0 } data ? data : "data");
}
