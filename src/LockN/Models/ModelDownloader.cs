using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace LockN.Models;

/// <summary>How far a download is; <see cref="TotalBytes"/> is null when the server sends no Content-Length.</summary>
internal readonly record struct ModelDownloadProgress(long BytesDone, long? TotalBytes)
{
    public double? Fraction => TotalBytes is > 0 and var total ? (double)BytesDone / total : null;
}

internal enum ModelDownloadError
{
    /// <summary>The server answered with a status other than 2xx.</summary>
    HttpStatus,

    /// <summary>No connection, or the connection broke.</summary>
    Network,

    /// <summary>Connecting or a read stalled longer than the timeout.</summary>
    TimedOut,

    /// <summary>The body ended before Content-Length bytes arrived.</summary>
    Truncated,

    /// <summary>The bytes arrived but are not the published file.</summary>
    ChecksumMismatch,

    /// <summary>The target directory cannot be written.</summary>
    FileSystem,
}

/// <summary>The outcome of a download: the file's path, or an error and a one-line message.</summary>
internal sealed record ModelDownloadResult(string? Path, long Bytes, ModelDownloadError? Error, string? Message)
{
    public bool Succeeded => Error is null;

    public static ModelDownloadResult Success(string path, long bytes) => new(path, bytes, null, null);

    public static ModelDownloadResult Failure(ModelDownloadError error, string message) =>
        new(null, 0, error, message.ReplaceLineEndings(" "));
}

/// <summary>
/// Downloads a model file into a directory: streams it to <c>FILE.partial</c> beside the target while hashing it,
/// checks the SHA-1, then moves it into place, so the target is either the old file or the complete, verified new one.
/// Expected failures (status, network, stall, checksum, disk) are results; cancellation throws. Nothing partial is left.
/// </summary>
internal sealed class ModelDownloader : IDisposable
{
    private const int BufferSize = 128 * 1024;
    private readonly HttpClient http;
    private readonly TimeSpan timeout;

    /// <param name="timeout">How long connecting, waiting for headers, or any single read may stall.</param>
    public ModelDownloader(TimeSpan timeout)
    {
        this.timeout = timeout;
        http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = timeout,
            AutomaticDecompression = DecompressionMethods.None,
            MaxAutomaticRedirections = 10,
        })
        {
            // HttpClient.Timeout does not cover reading the body; the per-read stall timer below does.
            Timeout = Timeout.InfiniteTimeSpan,
        };
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("lockn", typeof(ModelDownloader).Assembly.GetName().Version?.ToString(3) ?? "0"));
    }

    /// <summary>The download URL of a model: <paramref name="baseUrl"/> (http or https) with the file name appended.</summary>
    public static bool TryResolveUrl(string baseUrl, KnownWhisperModel model, out Uri url)
    {
        url = null!;
        var directory = baseUrl.EndsWith('/') ? baseUrl : baseUrl + "/";
        if (!Uri.TryCreate(directory, UriKind.Absolute, out var baseUri) || (baseUri.Scheme != Uri.UriSchemeHttp && baseUri.Scheme != Uri.UriSchemeHttps))
        {
            return false;
        }

        url = new Uri(baseUri, Uri.EscapeDataString(model.FileName));
        return true;
    }

    /// <summary>A URL fit for messages and logs: no user info, query or fragment (signed URLs carry secrets there).</summary>
    public static string Redact(Uri url) => url.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);

    /// <summary>
    /// One line saying how to supply a missing default model, e.g. "Default model whisper-base.en is not in /srv/models.
    /// Pull it with `lockn models pull base.en` (needs internet) or put ggml-base.en.bin (from ...) into /srv/models."
    /// </summary>
    public static string OfflineHint(string modelName, ModelDirectories directories)
    {
        var id = KnownWhisperModels.IdPrefix + KnownWhisperModels.ShortName(modelName);
        var file = KnownWhisperModels.FileName(modelName);
        var how = KnownWhisperModels.Find(modelName) is { } known
            ? $"Pull it with `lockn models pull {known.Name}` (needs internet) or put"
            : "Put";
        return $"Default model {id} is not in {directories}. {how} {file} (from {KnownWhisperModels.HomePage}) into {directories.PullTarget}.";
    }

    /// <summary>
    /// One sentence for a pull that could not reach its server: where to put the file by hand, and the mirror
    /// setting, e.g. "Without a network, put ggml-base.en.bin (from ...) into /srv/models by hand, or point
    /// ModelDownload:BaseUrl (--base-url) at a mirror that serves it."
    /// </summary>
    public static string ManualHint(KnownWhisperModel model, ModelDirectories directories) =>
        $"Without a network, put {model.FileName} (from {KnownWhisperModels.HomePage}) into {directories.PullTarget} by hand, " +
        $"or point {ModelDownloadOptions.Section}:BaseUrl (--base-url) at a mirror that serves it.";

    /// <summary>Lower-case hex SHA-1 of a file, to tell whether a file on disk is the published one.</summary>
    public static async Task<string> ComputeSha1Async(string path, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
#pragma warning disable CA5350 // whisper.cpp publishes SHA-1 sums: an integrity check over HTTPS, not a signature.
        return Convert.ToHexStringLower(await SHA1.HashDataAsync(file, cancellationToken));
#pragma warning restore CA5350
    }

    /// <summary>
    /// Downloads <paramref name="model"/> from <paramref name="url"/> into <paramref name="targetDirectory"/>,
    /// replacing a file of the same name only once the new one is complete and verified.
    /// </summary>
    public async Task<ModelDownloadResult> DownloadAsync(KnownWhisperModel model, Uri url, string targetDirectory,
        IProgress<ModelDownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var target = Path.Combine(targetDirectory, model.FileName);
        var partial = target + ".partial";
        var shownUrl = Redact(url);
        var partialCreated = false;
        var moved = false;
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            stall.CancelAfter(timeout);
            using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, stall.Token);
            if (!response.IsSuccessStatusCode)
            {
                return ModelDownloadResult.Failure(ModelDownloadError.HttpStatus,
                    $"GET {shownUrl} returned {(int)response.StatusCode} {response.ReasonPhrase}".TrimEnd());
            }

            var total = response.Content.Headers.ContentLength;
            await using var body = await response.Content.ReadAsStreamAsync(stall.Token);
            Directory.CreateDirectory(targetDirectory);
            using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            long done;
            await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                partialCreated = true;
                done = await CopyAsync(body, file, sha1, total, progress, stall, cancellationToken);
                await file.FlushAsync(cancellationToken);
                file.Flush(flushToDisk: true);
            }

            if (total is { } expected && done != expected)
            {
                return ModelDownloadResult.Failure(ModelDownloadError.Truncated, $"{shownUrl} ended after {done} of {expected} bytes");
            }

            var actual = Convert.ToHexStringLower(sha1.GetHashAndReset());
            if (!actual.Equals(model.Sha1, StringComparison.OrdinalIgnoreCase))
            {
                return ModelDownloadResult.Failure(ModelDownloadError.ChecksumMismatch,
                    $"checksum mismatch for {model.FileName}: expected SHA-1 {model.Sha1}, got {actual}");
            }

            File.Move(partial, target, overwrite: true);
            moved = true;
            return ModelDownloadResult.Success(target, done);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return ModelDownloadResult.Failure(ModelDownloadError.TimedOut, $"{shownUrl} stalled for more than {timeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException ex)
        {
            return ModelDownloadResult.Failure(ModelDownloadError.Network, $"cannot download {shownUrl}: {ex.Message}");
        }
        catch (IOException ex) when (ex is HttpIOException || ex.InnerException is SocketException)
        {
            return ModelDownloadResult.Failure(ModelDownloadError.Network, $"download of {shownUrl} broke off: {ex.Message}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ModelDownloadResult.Failure(ModelDownloadError.FileSystem, $"cannot write {target}: {ex.Message}");
        }
        finally
        {
            if (partialCreated && !moved)
            {
                TryDelete(partial);
            }
        }
    }

    private async Task<long> CopyAsync(Stream body, FileStream file, IncrementalHash sha1, long? total,
        IProgress<ModelDownloadProgress>? progress, CancellationTokenSource stall, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            long done = 0;
            progress?.Report(new ModelDownloadProgress(done, total));
            while (true)
            {
                stall.CancelAfter(timeout);
                var read = await body.ReadAsync(buffer.AsMemory(0, BufferSize), stall.Token);
                if (read == 0)
                {
                    return done;
                }

                sha1.AppendData(buffer, 0, read);
                await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                done += read;
                progress?.Report(new ModelDownloadProgress(done, total));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover .partial is never mistaken for a model (the catalogue only reads *.bin).
        }
    }

    public void Dispose() => http.Dispose();
}
