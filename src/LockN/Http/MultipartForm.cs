using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace LockN.Http;

/// <summary>An uploaded file held in memory (bounded by the upload limit) with the form's text fields.</summary>
internal sealed class MultipartForm
{
    private const int MaxFieldBytes = 64 * 1024;
    private const int MaxFields = 64;
    private const long InitialFileBufferBytes = 4 * 1024 * 1024;
    private const long FormOverheadBytes = 1024 * 1024;

    private readonly Dictionary<string, List<string>> fields = new(StringComparer.Ordinal);

    public string? FileName { get; private set; }
    public string? FileFieldName { get; private set; }
    public MemoryStream? File { get; private set; }

    public string? Get(string name) => fields.TryGetValue(name, out var values) ? values[^1] : null;

    public IReadOnlyList<string> GetAll(string name) => fields.TryGetValue(name, out var values) ? values : [];

    /// <summary>
    /// Streams a multipart/form-data body, keeping the part named <paramref name="fileField"/> (at most
    /// <paramref name="maxFileBytes"/>) and the text fields. Never writes to disk.
    /// </summary>
    public static async Task<(MultipartForm? Form, ApiError? Error)> ReadAsync(HttpRequest request, string fileField, long maxFileBytes, string limitSetting, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var contentType) ||
            !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            return (null, ApiError.UnsupportedMedia(
                $"Expected a multipart/form-data body, got '{request.ContentType ?? "none"}'.", param: null));
        }

        var boundary = HeaderUtilities.RemoveQuotes(contentType.Boundary).Value;
        if (string.IsNullOrWhiteSpace(boundary))
        {
            return (null, ApiError.BadRequest("The multipart/form-data Content-Type has no boundary."));
        }

        // The form's other fields and part headers may add up to 1 MiB around the file.
        if (RequestBodyLimit.Apply(request.HttpContext, maxFileBytes + FormOverheadBytes, fileField, limitSetting) is { } tooLarge)
        {
            return (null, tooLarge);
        }

        var form = new MultipartForm();
        var reader = new MultipartReader(boundary, request.Body) { HeadersLengthLimit = 16 * 1024 };
        try
        {
            var fieldCount = 0;
            while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) ||
                    !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }

                var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
                if (disposition.IsFileDisposition() || name == fileField)
                {
                    if (name != fileField)
                    {
                        continue; // an unknown file part: drained by the reader
                    }

                    // Sized from the body's declared length (up to a cap, since the client states it) so a typical
                    // upload is received without the stream regrowing and copying.
                    var buffer = new MemoryStream((int)Math.Min(request.ContentLength ?? 0, Math.Min(maxFileBytes, InitialFileBufferBytes)));
                    if (!await CopyBoundedAsync(section.Body, buffer, maxFileBytes, cancellationToken))
                    {
                        return (null, ApiError.TooLarge($"The file is larger than the limit of {maxFileBytes} bytes ({limitSetting}).", fileField));
                    }

                    buffer.Position = 0;
                    form.File = buffer;
                    form.FileFieldName = name;
                    form.FileName = HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value;
                    continue;
                }

                if (++fieldCount > MaxFields)
                {
                    return (null, ApiError.BadRequest($"The form has more than {MaxFields} fields."));
                }

                var text = new MemoryStream();
                if (!await CopyBoundedAsync(section.Body, text, MaxFieldBytes, cancellationToken))
                {
                    return (null, ApiError.BadRequest($"The form field '{name}' is longer than {MaxFieldBytes} bytes.", name));
                }

                var value = Encoding.UTF8.GetString(text.GetBuffer(), 0, (int)text.Length);
                if (!form.fields.TryGetValue(name, out var values))
                {
                    form.fields[name] = values = [];
                }

                values.Add(value);
            }
        }
        catch (InvalidDataException ex)
        {
            return (null, ApiError.BadRequest($"The multipart body is malformed: {ex.Message}"));
        }
        catch (IOException ex)
        {
            if (await ClientAbort.IsClientGoneAsync(request.HttpContext, ex))
            {
                throw; // logged once by the abort logging
            }

            return (null, ex is BadHttpRequestException bad
                ? RequestBodyFailure.Describe(request.HttpContext, bad, fileField, limitSetting)
                : ApiError.BadRequest("The multipart body ended early.", code: "invalid_body"));
        }

        return (form, null);
    }

    private static async Task<bool> CopyBoundedAsync(Stream source, MemoryStream destination, long limit, CancellationToken cancellationToken)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int read;
            while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (destination.Length + read > limit)
                {
                    return false;
                }

                destination.Write(buffer, 0, read);
            }

            return true;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
