using System.Numerics;

namespace LockN.Tests.Audio;

/// <summary>Magnitude spectra for checking what a resampler keeps and what it removes.</summary>
public static class Spectrum
{
    /// <summary>Blackman-Harris-windowed magnitude spectrum (dB, arbitrary reference) of the first power-of-two run of samples.</summary>
    public static double[] MagnitudeDb(ReadOnlySpan<float> samples, int length)
    {
        if (!BitOperations.IsPow2(length) || samples.Length < length)
        {
            throw new ArgumentException($"need {length} samples (a power of two), got {samples.Length}");
        }

        var data = new Complex[length];
        for (var i = 0; i < length; i++)
        {
            var phase = 2 * Math.PI * i / (length - 1);
            var window = 0.35875 - (0.48829 * Math.Cos(phase)) + (0.14128 * Math.Cos(2 * phase)) - (0.01168 * Math.Cos(3 * phase));
            data[i] = samples[i] * window;
        }

        Fft(data);
        var result = new double[(length / 2) + 1];
        for (var bin = 0; bin < result.Length; bin++)
        {
            result[bin] = 20 * Math.Log10(data[bin].Magnitude + 1e-30);
        }

        return result;
    }

    public static int PeakBin(double[] spectrum)
    {
        var peak = 0;
        for (var bin = 1; bin < spectrum.Length; bin++)
        {
            if (spectrum[bin] > spectrum[peak])
            {
                peak = bin;
            }
        }

        return peak;
    }

    public static float[] Tone(double frequency, int sampleRate, double seconds, double amplitude = 0.5) =>
        Enumerable.Range(0, (int)(seconds * sampleRate))
            .Select(i => (float)(amplitude * Math.Sin(2 * Math.PI * frequency * i / sampleRate)))
            .ToArray();

    private static void Fft(Complex[] data)
    {
        var n = data.Length;
        for (int i = 1, j = 0; i < n; i++)
        {
            var bit = n >> 1;
            for (; (j & bit) != 0; bit >>= 1)
            {
                j ^= bit;
            }

            j ^= bit;
            if (i < j)
            {
                (data[i], data[j]) = (data[j], data[i]);
            }
        }

        for (var size = 2; size <= n; size <<= 1)
        {
            var step = Complex.FromPolarCoordinates(1, -2 * Math.PI / size);
            for (var start = 0; start < n; start += size)
            {
                var w = Complex.One;
                for (var k = 0; k < size / 2; k++)
                {
                    var even = data[start + k];
                    var odd = data[start + k + (size / 2)] * w;
                    data[start + k] = even + odd;
                    data[start + k + (size / 2)] = even - odd;
                    w *= step;
                }
            }
        }
    }
}
