using LockN.Audio;

namespace LockN.Tests.Audio;

public class SincResamplerTests(ITestOutputHelper output)
{
    private const int FftLength = 16384;

    private static float[] Resample(float[] input, int inputRate, int outputRate, int chunk = 4410)
    {
        var output = new List<float>();
        var resampler = new SincResampler(inputRate, outputRate, samples => output.AddRange(samples));
        for (var offset = 0; offset < input.Length; offset += chunk)
        {
            resampler.Write(input.AsSpan(offset, Math.Min(chunk, input.Length - offset)));
        }

        resampler.Flush();
        return [.. output];
    }

    private static double[] SteadyStateSpectrum(float[] output) =>
        Spectrum.MagnitudeDb(output.AsSpan(4000), FftLength); // skip the filter's start-up

    [Fact]
    public void A_1kHz_tone_at_44_1kHz_stays_at_1kHz()
    {
        var output = Resample(Spectrum.Tone(1000, 44100, 2), 44100, 16000);

        var peakHz = Spectrum.PeakBin(SteadyStateSpectrum(output)) * 16000.0 / FftLength;

        Assert.InRange(peakHz, 1000 - 1.0, 1000 + 1.0);
    }

    [Fact]
    public void A_1kHz_tone_keeps_its_level()
    {
        var output = Resample(Spectrum.Tone(1000, 44100, 2, amplitude: 0.5), 44100, 16000);

        var peak = output.AsSpan(4000, 16000).ToArray().Max(Math.Abs);

        Assert.InRange(peak, 0.5 * 0.99, 0.5 * 1.01);
    }

    [Fact]
    public void A_10kHz_tone_at_44_1kHz_is_attenuated_by_at_least_60dB()
    {
        var reference = SteadyStateSpectrum(Resample(Spectrum.Tone(1000, 44100, 2), 44100, 16000)).Max();
        var aliased = SteadyStateSpectrum(Resample(Spectrum.Tone(10000, 44100, 2), 44100, 16000));

        // The loudest bin anywhere in the output: whatever of 10 kHz folded back below 8 kHz.
        var attenuation = reference - aliased.Max();
        output.WriteLine($"10 kHz → {attenuation:F1} dB below the 1 kHz reference");

        Assert.True(attenuation >= 60, $"10 kHz came through at -{attenuation:F1} dB relative to the 1 kHz tone");
    }

    [Theory]
    [InlineData(8000)]
    [InlineData(11025)]
    [InlineData(22050)]
    [InlineData(48000)]
    [InlineData(96000)]
    [InlineData(44056)]
    public void Any_rate_keeps_a_1kHz_tone_at_1kHz_and_the_duration(int inputRate)
    {
        var output = Resample(Spectrum.Tone(1000, inputRate, 3), inputRate, 16000, chunk: 1000);

        Assert.Equal(48000, output.Length);
        var peakHz = Spectrum.PeakBin(SteadyStateSpectrum(output)) * 16000.0 / FftLength;
        Assert.InRange(peakHz, 999.0, 1001.0);
        Assert.InRange(output.AsSpan(8000, 16000).ToArray().Max(Math.Abs), 0.49f, 0.51f);
    }

    [Theory]
    [InlineData(44100)]
    [InlineData(48000)]
    [InlineData(22050)]
    [InlineData(8000)]
    [InlineData(96000)]
    public void Sixteen_outputs_at_a_time_equal_one_dot_product_per_output(int inputRate)
    {
        // White noise reaches every tap with a different weight; a misplaced coefficient would show.
        var random = new Random(inputRate);
        var input = new float[(inputRate * 2) + 13];
        for (var i = 0; i < input.Length; i++)
        {
            input[i] = (float)((random.NextDouble() * 2) - 1);
        }

        var blocks = new List<float>();
        var dots = new List<float>();
        var blockResampler = new SincResampler(inputRate, 16000, samples => blocks.AddRange(samples));
        var dotResampler = new SincResampler(inputRate, 16000, samples => dots.AddRange(samples), useBlocks: false);
        foreach (var (resampler, chunk) in new[] { (blockResampler, 333), (dotResampler, 1000) })
        {
            for (var offset = 0; offset < input.Length; offset += chunk)
            {
                resampler.Write(input.AsSpan(offset, Math.Min(chunk, input.Length - offset)));
            }

            resampler.Flush();
        }

        // Where the hardware has no 256-bit vectors both take the dot product; the comparison then proves less.
        output.WriteLine($"{inputRate} Hz: blocks on this machine: {SincResampler.HasBlocks(inputRate, 16000)}");
        Assert.Equal(dots.Count, blocks.Count);
        var largest = dots.Zip(blocks, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(largest < 1e-5, $"largest difference {largest:E2}");
    }

    [Fact]
    public void Chunk_boundaries_do_not_change_the_output()
    {
        var input = Spectrum.Tone(440, 44100, 1);

        var whole = Resample(input, 44100, 16000, chunk: input.Length);
        var pieces = Resample(input, 44100, 16000, chunk: 7);

        Assert.Equal(whole, pieces);
    }
}
