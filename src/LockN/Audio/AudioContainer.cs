namespace LockN.Audio;

/// <summary>Recognises a container from its first bytes; the file name and Content-Type are not trusted.</summary>
internal static class AudioContainer
{
    /// <summary>Bytes <see cref="Sniff"/> wants to see.</summary>
    public const int HeaderBytes = 64;

    /// <summary>Returns a short name (<c>wav</c>, <c>mp3</c>, <c>flac</c>, <c>ogg</c>, <c>webm</c>, <c>mp4</c>, …) or null when the bytes are not a known audio container.</summary>
    public static string? Sniff(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 12 && (head.StartsWith("RIFF"u8) || head.StartsWith("RF64"u8) || head.StartsWith("BW64"u8)) && head[8..12].SequenceEqual("WAVE"u8))
        {
            return "wav";
        }

        if (head.StartsWith("fLaC"u8))
        {
            return "flac";
        }

        if (head.StartsWith("OggS"u8))
        {
            return "ogg";
        }

        if (head.StartsWith((ReadOnlySpan<byte>)[0x1A, 0x45, 0xDF, 0xA3]))
        {
            return "webm";
        }

        if (head.Length >= 12 && head[4..8].SequenceEqual("ftyp"u8))
        {
            return "mp4";
        }

        if (head.StartsWith("ID3"u8))
        {
            return "mp3";
        }

        if (head.Length >= 12 && head.StartsWith("FORM"u8) && (head[8..12].SequenceEqual("AIFF"u8) || head[8..12].SequenceEqual("AIFC"u8)))
        {
            return "aiff";
        }

        if (head.StartsWith("caff"u8))
        {
            return "caf";
        }

        if (head.StartsWith("#!AMR"u8))
        {
            return "amr";
        }

        if (head.StartsWith("wvpk"u8))
        {
            return "wavpack";
        }

        // Raw MPEG audio and ADTS AAC start with an 11/12-bit frame sync.
        if (head.Length >= 2 && head[0] == 0xFF)
        {
            if ((head[1] & 0xF6) == 0xF0)
            {
                return "aac";
            }

            if ((head[1] & 0xE0) == 0xE0 && (head[1] & 0x06) != 0)
            {
                return "mp3";
            }
        }

        return null;
    }

    /// <summary>
    /// Containers ffmpeg reads wrongly from a pipe: ISO-BMFF (mp4/m4a/mov) may keep its index after the samples, and
    /// MP3 decoders trim the encoder's padding only when they can seek (jfk.mp3 is 11.019 s from a pipe, 11.000 s seekable).
    /// </summary>
    public static bool NeedsSeekableInput(string container) => container is "mp4" or "mp3";
}
