using Microsoft.Extensions.Options;

namespace LockN.Dispatch;

/// <summary>Checks each backend at start-up, naming the full key of a bad setting (e.g. <c>Dispatch:Backends:1:Url</c>).</summary>
internal sealed class DispatchOptionsValidator : IValidateOptions<DispatchOptions>
{
    public ValidateOptionsResult Validate(string? name, DispatchOptions options)
    {
        var failures = new List<string>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < options.Backends.Count; i++)
        {
            var backend = options.Backends[i];
            var key = $"{DispatchOptions.Section}:Backends:{i}";
            if (string.IsNullOrWhiteSpace(backend.Name))
            {
                failures.Add($"{key}:Name is required (a short name shown in errors and /admin/backends).");
            }
            else if (!names.Add(backend.Name))
            {
                failures.Add($"{key}:Name '{backend.Name}' is used by another backend.");
            }

            if (!Uri.TryCreate(backend.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            {
                failures.Add($"{key}:Url must be an absolute http or https URL such as http://127.0.0.1:8081 (got '{backend.Url}').");
            }

            if (backend.Models.Any(string.IsNullOrWhiteSpace))
            {
                failures.Add($"{key}:Models must not contain empty names (leave it out for a llama-server router, whose models are read from its /models).");
            }

            if (backend.Slots is < 0 or > 1024)
            {
                failures.Add($"{key}:Slots must be between 0 (ask the server) and 1024 (got {backend.Slots}).");
            }

            if (backend.QueueLength is < 0 or > 100_000)
            {
                failures.Add($"{key}:QueueLength must be between 0 and 100000 (got {backend.QueueLength}).");
            }

            if (!(backend.DeadlineSeconds is >= 0.05 and <= 86_400))
            {
                failures.Add($"{key}:DeadlineSeconds must be between 0.05 and 86400 (got {backend.DeadlineSeconds}).");
            }
        }

        for (var i = 0; i < options.ManagedServers.Count; i++)
        {
            var server = options.ManagedServers[i];
            var key = $"{DispatchOptions.Section}:ManagedServers:{i}";
            if (string.IsNullOrWhiteSpace(server.Name))
            {
                failures.Add($"{key}:Name is required (a short name shown in errors and /admin/backends).");
            }
            else if (!names.Add(server.Name))
            {
                failures.Add($"{key}:Name '{server.Name}' is used by another backend.");
            }

            if (string.IsNullOrWhiteSpace(server.Model))
            {
                failures.Add($"{key}:Model is required: a GGUF file, by path or by name under the model directories.");
            }

            if (server.Models.Any(string.IsNullOrWhiteSpace))
            {
                failures.Add($"{key}:Models must not contain empty names.");
            }

            if (!string.Equals(server.Start, ManagedServerOptions.StartAlways, StringComparison.OrdinalIgnoreCase) && !server.OnDemand)
            {
                failures.Add($"{key}:Start must be '{ManagedServerOptions.StartAlways}' or '{ManagedServerOptions.StartOnDemand}' (got '{server.Start}').");
            }

            if (server.Parallel is < 1 or > 1024)
            {
                failures.Add($"{key}:Parallel must be between 1 and 1024 (got {server.Parallel}).");
            }

            if (server.ContextSize is < 0 or > 10_000_000)
            {
                failures.Add($"{key}:ContextSize must be between 0 (the model's own) and 10000000 (got {server.ContextSize}).");
            }

            if (server.GpuLayers is < 0 or > 100_000 || server.Threads is < 1 or > 4096)
            {
                failures.Add($"{key}: GpuLayers must be 0 or more and Threads 1 or more when set.");
            }

            if (server.MemoryMiB < 0 || !(server.IdleUnloadSeconds is >= 0 and <= 31_536_000) || !(server.LoadTimeoutSeconds is >= 0.05 and <= 86_400))
            {
                failures.Add($"{key}: MemoryMiB and IdleUnloadSeconds must be 0 or more, LoadTimeoutSeconds between 0.05 and 86400.");
            }

            if (server.QueueLength is < 0 or > 100_000 || !(server.DeadlineSeconds is >= 0.05 and <= 86_400))
            {
                failures.Add($"{key}: QueueLength must be between 0 and 100000, DeadlineSeconds between 0.05 and 86400.");
            }

            if (server.ExtraArguments.Any(a => a is null) || server.ExtraArguments.Any(a => a is "--port" or "--host" or "-m" or "--model"))
            {
                failures.Add($"{key}:ExtraArguments must not set --host, --port or the model: LockN sets them.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
