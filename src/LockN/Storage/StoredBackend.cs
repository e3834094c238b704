namespace LockN.Storage;

/// <summary>
/// A URL backend added at run time (POST /admin/backends), shared by every node on the database. Its model ids are
/// kept as a JSON array. Times are Unix milliseconds.
/// </summary>
public sealed class StoredBackend
{
    public required string Name { get; set; }

    public required string Url { get; set; }

    /// <summary>JSON array of model ids, the backend's own first.</summary>
    public required string Models { get; set; }

    public int Slots { get; set; }

    public int QueueLength { get; set; }

    public double DeadlineSeconds { get; set; }

    /// <summary>Takes no new requests on any node; set and cleared through /admin/backends/{name}/drain and /start.</summary>
    public bool Draining { get; set; }

    public long CreatedAt { get; set; }

    public long UpdatedAt { get; set; }
}
