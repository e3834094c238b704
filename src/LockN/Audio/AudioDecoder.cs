using Microsoft.Extensions.Options;

namespace LockN.Audio;

/// <summary>
/// Turns an uploaded file into 16 kHz mono samples: WAV in-process, everything else through ffmpeg, within the
/// configured duration and time limits. Expected failures come back as results, never exceptions.
/// </summary>
/// <param name="spool">Where long audio is kept instead of memory: the server has one; the CLI's in-process commands do not.</param>
internal sealed class AudioDecoder(IOptions<AudioOptions> options, ILogger<AudioDecoder> logger, AudioSpool? spool = null)
{
    private readonly FfmpegDecoder ffmpeg = new(options.Value, logger, spool);

    /// <summary>Decodes a file (the CLI's inputs); one that cannot be read is refused like a broken upload.</summary>
    public async Task<AudioDecodeResult> DecodeFileAsync(FileInfo file, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = file.OpenRead();
            return await DecodeAsync(stream, cancellationToken);
        }
        catch (IOException ex)
        {
            return AudioDecodeResult.Failure(AudioDecodeError.Malformed, ex.Message);
        }
    }

    public async Task<AudioDecodeResult> DecodeAsync(Stream input, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!input.CanSeek)
        {
            var copy = new MemoryStream();
            await input.CopyToAsync(copy, cancellationToken);
            copy.Position = 0;
            input = copy;
        }

        var start = input.Position;
        var head = new byte[AudioContainer.HeaderBytes];
        var headLength = await input.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken);
        input.Position = start;
        if (headLength == 0)
        {
            return AudioDecodeResult.Failure(AudioDecodeError.Empty, "The file is empty.");
        }

        if (AudioContainer.Sniff(head.AsSpan(0, headLength)) is not { } container)
        {
            return AudioDecodeResult.Failure(AudioDecodeError.UnsupportedMedia,
                "The file is not audio in a format LockN reads (WAV, MP3, FLAC, Ogg/Opus, WebM, M4A/AAC, AIFF, CAF, AMR).");
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(settings.DecodeTimeoutSeconds));
        try
        {
            if (container == "wav")
            {
                var result = await WavReader.ReadAsync(input, settings.MaxDurationSeconds, streamed: false, spool, deadline.Token);
                if (result.Error != AudioDecodeError.UnsupportedMedia)
                {
                    return result;
                }

                // ADPCM, μ-law, GSM and other WAV codecs: ffmpeg knows them.
                input.Position = start;
            }

            return await ffmpeg.DecodeAsync(input, container, deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return AudioDecodeResult.Failure(AudioDecodeError.TimedOut,
                $"Decoding took longer than the limit of {settings.DecodeTimeoutSeconds} s (Audio:DecodeTimeoutSeconds).");
        }
    }
}
