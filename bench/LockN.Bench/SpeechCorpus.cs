using System.Globalization;
using LockN.Audio;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LockN.Bench;

/// <summary>One utterance of the manifest: its WAV bytes (for HTTP) and its decoded samples (for the direct call).</summary>
internal sealed record Utterance(string Id, string Path, byte[] FileBytes, float[] Samples, double Seconds);

internal sealed class SpeechCorpus : List<Utterance>
{
    public double TotalSeconds => this.Sum(u => u.Seconds);

    public static async Task<SpeechCorpus> LoadAsync(string manifestPath)
    {
        var root = System.IO.Path.GetDirectoryName(manifestPath)!;
        var decoder = new AudioDecoder(Options.Create(new AudioOptions()), NullLogger<AudioDecoder>.Instance);
        var corpus = new SpeechCorpus();
        foreach (var line in (await File.ReadAllLinesAsync(manifestPath)).Skip(1))
        {
            var columns = line.Split('\t');
            if (columns.Length < 3)
            {
                continue;
            }

            var path = System.IO.Path.Combine(root, columns[1]);
            var bytes = await File.ReadAllBytesAsync(path);
            var decoded = await decoder.DecodeAsync(new MemoryStream(bytes), CancellationToken.None);
            if (!decoded.Succeeded)
            {
                throw new InvalidDataException($"{path}: {decoded.Message}");
            }

            corpus.Add(new Utterance(columns[0], path, bytes, decoded.Audio!.Samples.ToArray(), double.Parse(columns[2], CultureInfo.InvariantCulture)));
        }

        return corpus;
    }
}
