using System.ComponentModel;
using System.Diagnostics;

namespace LockN.Audio;

/// <summary>
/// Decodes every container but WAV with ffmpeg as a child process: the upload goes in on stdin, float WAV at the
/// source rate comes out on stdout (downmix and resampling stay ours), nothing is written to disk. The process is
/// killed when the caller's token fires, so an abandoned request leaves nothing running.
/// </summary>
internal sealed partial class FfmpegDecoder(AudioOptions options, ILogger logger, AudioSpool? spool)
{
    private const int StderrTailChars = 2000;

    public async Task<AudioDecodeResult> DecodeAsync(Stream input, string container, CancellationToken cancellationToken)
    {
        // A file on disk is read by path; an mp4 in memory goes through a memory file because ffmpeg must seek in it.
        using var memoryFile = input is not FileStream && AudioContainer.NeedsSeekableInput(container)
            ? await MemoryFile.TryCreateAsync(input, cancellationToken)
            : null;
        var source = input is FileStream file ? file.Name : memoryFile?.Path ?? "pipe:0";
        var viaPipe = source == "pipe:0";

        var startInfo = new ProcessStartInfo(options.FfmpegPath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["-hide_banner", "-nostats", "-loglevel", "error", "-i", source,
                     "-map", "0:a:0", "-vn", "-sn", "-dn", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"])
        {
            startInfo.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(startInfo) ?? throw new Win32Exception("Process.Start returned null");
        }
        catch (Win32Exception ex)
        {
            LogUnavailable(logger, options.FfmpegPath, ex.Message);
            return AudioDecodeResult.Failure(AudioDecodeError.DecoderUnavailable,
                $"Decoding {container} needs ffmpeg, which could not be started ('{options.FfmpegPath}': {ex.Message}). Install it (apt-get install ffmpeg) or set Audio:FfmpegPath.");
        }

        using (process)
        await using (cancellationToken.Register(() => Kill(process)))
        {
            var feeding = viaPipe ? FeedAsync(input, process.StandardInput.BaseStream, cancellationToken) : CloseAsync(process.StandardInput);
            var errors = ReadTailAsync(process.StandardError);
            AudioDecodeResult result;
            try
            {
                result = await WavReader.ReadAsync(process.StandardOutput.BaseStream, options.MaxDurationSeconds, streamed: true, spool, cancellationToken);
            }
            finally
            {
                Kill(process);
                await process.WaitForExitAsync(CancellationToken.None);
                await feeding;
            }

            if (cancellationToken.IsCancellationRequested)
            {
                result.Audio?.Dispose();
                cancellationToken.ThrowIfCancellationRequested();
            }

            var stderr = await errors;
            if (result.Error == AudioDecodeError.TooLong)
            {
                return result;
            }

            if (process.ExitCode != 0 || !result.Succeeded)
            {
                result.Audio?.Dispose();
                LogFailed(logger, container, process.ExitCode, stderr);
                return Failed(container, stderr, result);
            }

            return AudioDecodeResult.Success(result.Audio! with { Container = container });
        }
    }

    private static AudioDecodeResult Failed(string container, string stderr, AudioDecodeResult output)
    {
        if (stderr.Contains("matches no streams", StringComparison.Ordinal) || stderr.Contains("does not contain any stream", StringComparison.Ordinal))
        {
            return AudioDecodeResult.Failure(AudioDecodeError.Malformed, $"The {container} file has no audio stream.");
        }

        if (output.Error == AudioDecodeError.Empty && stderr.Length == 0)
        {
            return output;
        }

        var reason = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "no output";
        reason = FfmpegContext().Replace(reason, ""); // "[matroska,webm @ 0x5560…] ": the decoder's memory address is nothing a client can use
        return AudioDecodeResult.Failure(AudioDecodeError.Malformed, $"The {container} file could not be decoded: {reason}");
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\[[^\]]* @ 0x[0-9a-fA-F]+\] ")]
    private static partial System.Text.RegularExpressions.Regex FfmpegContext();

    private static async Task FeedAsync(Stream input, Stream stdin, CancellationToken cancellationToken)
    {
        try
        {
            await using (stdin)
            {
                await input.CopyToAsync(stdin, cancellationToken);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // ffmpeg stopped reading (it failed, or was killed): its exit code and stderr tell why.
        }
    }

    private static Task CloseAsync(StreamWriter stdin)
    {
        stdin.Close();
        return Task.CompletedTask;
    }

    private static async Task<string> ReadTailAsync(StreamReader stderr)
    {
        var tail = new System.Text.StringBuilder();
        var buffer = new char[1024];
        int read;
        while ((read = await stderr.ReadAsync(buffer)) > 0)
        {
            tail.Append(buffer, 0, read);
            if (tail.Length > StderrTailChars * 2)
            {
                tail.Remove(0, tail.Length - StderrTailChars);
            }
        }

        return tail.ToString().Trim();
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill();
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "ffmpeg could not be started from '{Path}': {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "ffmpeg failed to decode a {Container} upload (exit {ExitCode}): {Stderr}")]
    private static partial void LogFailed(ILogger logger, string container, int exitCode, string stderr);
}
