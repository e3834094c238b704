using System.Numerics;

namespace LockN.Audio;

/// <summary>
/// Band-limited sample-rate conversion by a Kaiser-windowed sinc filter in polyphase form, fed in chunks so a long
/// input never has to sit in memory at its source rate. The cut-off sits just below the lower Nyquist frequency, so
/// nothing above 8 kHz folds back into 16 kHz output (stop band ≥ 80 dB) and speech up to ~6.5 kHz passes flat.
/// </summary>
public sealed class SincResampler
{
    // 24 zero crossings each side with β = 9: ~90 dB stop band, a ~1.9 kHz transition centred at 7.3 kHz for 16 kHz
    // output (flat to ~6.3 kHz). More crossings sharpen the edge at a linear cost in every output sample.
    private const int ZeroCrossings = 24;
    private const double KaiserBeta = 9.0;
    private const double Rolloff = 0.91;

    // Above this many phases (odd rate ratios) the phase is rounded to the nearest of this many: < 1/4096 sample of jitter.
    private const int MaxPhases = 4096;

    // Building a table costs ~1 ms (thousands of Bessel evaluations); uploads come at a handful of rates, so keep
    // those, but not every odd rate a client can invent.
    private const int MaxCachedTables = 32;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int, int), float[]> Tables = new();

    private readonly long up;
    private readonly long down;
    private readonly int phases;
    private readonly int halfTaps;
    private readonly int taps;
    private readonly float[] table;
    private readonly Action<ReadOnlySpan<float>> output;

    private float[] history;
    private long historyStart;
    private int historyCount;
    private long inputCount;
    private long nextOutput;
    private readonly float[] outputChunk = new float[4096];

    /// <param name="output">Receives the resampled samples in order, in chunks.</param>
    public SincResampler(int inputRate, int outputRate, Action<ReadOnlySpan<float>> output)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputRate);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputRate);
        this.output = output;
        var divisor = (int)BigInteger.GreatestCommonDivisor(inputRate, outputRate);
        up = outputRate / divisor;
        down = inputRate / divisor;
        phases = (int)Math.Min(up, MaxPhases);

        // Cut-off in cycles per input sample, below the Nyquist frequency of the slower side.
        var cutoff = 0.5 * Math.Min(1.0, (double)outputRate / inputRate) * Rolloff;
        halfTaps = (int)Math.Ceiling(ZeroCrossings / (2 * cutoff));
        taps = 2 * halfTaps;
        table = Tables.Count < MaxCachedTables ? Tables.GetOrAdd((inputRate, outputRate), _ => BuildTable(cutoff)) : BuildTable(cutoff);

        // Zeros before the first sample, so the first outputs have history to look back on.
        history = new float[Math.Max(8192, taps * 4)];
        historyStart = -halfTaps;
        historyCount = halfTaps;
    }

    /// <summary>Adds source samples and emits every output sample they complete.</summary>
    public void Write(ReadOnlySpan<float> samples)
    {
        inputCount += samples.Length;
        Append(samples, long.MaxValue);
    }

    /// <summary>Pads with silence and emits the tail, so the output lasts exactly as long as the input.</summary>
    public void Flush()
    {
        var totalOutputs = ((inputCount * up) + down - 1) / down;
        var silence = new float[halfTaps + 2];
        while (nextOutput < totalOutputs)
        {
            Append(silence, totalOutputs);
        }
    }

    private void Append(ReadOnlySpan<float> samples, long outputLimit)
    {
        while (!samples.IsEmpty)
        {
            if (historyCount == history.Length)
            {
                Compact();
                if (historyCount == history.Length)
                {
                    Array.Resize(ref history, history.Length * 2);
                }
            }

            var take = Math.Min(history.Length - historyCount, samples.Length);
            samples[..take].CopyTo(history.AsSpan(historyCount));
            historyCount += take;
            samples = samples[take..];
            Emit(outputLimit);
        }
    }

    private void Emit(long outputLimit)
    {
        var produced = 0;
        var historyEnd = historyStart + historyCount;
        while (nextOutput < outputLimit)
        {
            var position = nextOutput * down;
            var center = position / up;
            var phase = (int)(position % up);
            if (phases != up)
            {
                phase = (int)Math.Round((double)phase * phases / up);
                if (phase == phases)
                {
                    phase = 0;
                    center++;
                }
            }

            if (center + halfTaps >= historyEnd)
            {
                break;
            }

            var first = (int)(center - halfTaps + 1 - historyStart);
            outputChunk[produced++] = Dot(table.AsSpan(phase * taps, taps), history.AsSpan(first, taps));
            nextOutput++;
            if (produced == outputChunk.Length)
            {
                output(outputChunk);
                produced = 0;
            }
        }

        if (produced > 0)
        {
            output(outputChunk.AsSpan(0, produced));
        }
    }

    /// <summary>Drops history no future output can reach.</summary>
    private void Compact()
    {
        var oldestNeeded = (nextOutput * down / up) - halfTaps + 1;
        var drop = (int)Math.Clamp(oldestNeeded - historyStart, 0, historyCount);
        if (drop == 0)
        {
            return;
        }

        history.AsSpan(drop, historyCount - drop).CopyTo(history);
        historyStart += drop;
        historyCount -= drop;
    }

    private float[] BuildTable(double cutoff)
    {
        var coefficients = new float[phases * taps];
        var besselBeta = BesselI0(KaiserBeta);
        for (var phase = 0; phase < phases; phase++)
        {
            var fraction = (double)phase / phases;
            for (var tap = 0; tap < taps; tap++)
            {
                // Tap t weighs input sample (center - halfTaps + 1 + t), which lies (fraction - offset) samples away.
                var distance = fraction - (tap - halfTaps + 1);
                var x = distance / (halfTaps + 1);
                var window = Math.Abs(x) >= 1 ? 0 : BesselI0(KaiserBeta * Math.Sqrt(1 - (x * x))) / besselBeta;
                var argument = 2 * cutoff * distance;
                var sinc = argument == 0 ? 1 : Math.Sin(Math.PI * argument) / (Math.PI * argument);
                coefficients[(phase * taps) + tap] = (float)(2 * cutoff * sinc * window);
            }
        }

        return coefficients;
    }

    private static double BesselI0(double x)
    {
        double sum = 1, term = 1, half = x / 2;
        for (var k = 1; k < 64 && term > sum * 1e-17; k++)
        {
            term *= half / k * (half / k);
            sum += term;
        }

        return sum;
    }

    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var sum = Vector<float>.Zero;
        var i = 0;
        for (; i <= a.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            sum += new Vector<float>(a[i..]) * new Vector<float>(b[i..]);
        }

        var result = Vector.Sum(sum);
        for (; i < a.Length; i++)
        {
            result += a[i] * b[i];
        }

        return result;
    }
}
