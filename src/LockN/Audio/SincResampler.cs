using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LockN.Audio;

/// <summary>
/// Band-limited sample-rate conversion by a Kaiser-windowed sinc filter in polyphase form, fed in chunks so a long
/// input never has to sit in memory at its source rate. The cut-off (7.3 kHz) sits below the 8 kHz Nyquist frequency
/// of 16 kHz output: the pass band is flat to ~6.3 kHz and the stop band (~90 dB) starts near 8.2 kHz, so the little
/// that folds back from 8–8.2 kHz lands above 7.8 kHz, outside speech and YAMNet's 7.5 kHz mel range.
/// Every upload at another rate than 16 kHz passes through here, so the inner loops are vectorised (see
/// <see cref="OutputBlocks"/>); the filter itself is built once per rate pair and shared.
/// </summary>
internal sealed class SincResampler
{
    // 24 zero crossings each side with β = 9: ~90 dB stop band, a ~1.9 kHz transition centred at 7.3 kHz for 16 kHz
    // output (flat to ~6.3 kHz). More crossings sharpen the edge at a linear cost in every output sample.
    private const int ZeroCrossings = 24;
    private const double KaiserBeta = 9.0;
    private const double Rolloff = 0.91;

    // Above this many phases (odd rate ratios) the phase is rounded to the nearest of this many: < 1/4096 sample of jitter.
    private const int MaxPhases = 4096;

    // Building a filter costs ~1 ms (thousands of Bessel evaluations); uploads come at a handful of rates, so keep
    // those, but not every odd rate a client can invent.
    private const int MaxCachedFilters = 32;
    private static readonly ConcurrentDictionary<(int, int), Filter> Filters = new();

    private readonly Filter filter;
    private readonly bool useBlocks;
    private readonly Action<ReadOnlySpan<float>> output;
    private readonly float[] outputChunk = new float[4096];

    private float[] history;
    private long historyStart;
    private int historyCount;
    private long inputCount;
    private long nextOutput;

    // The next output's position in the input, nextOutput * down / up, kept as quotient and remainder so no division
    // runs per sample.
    private long nextCenter;
    private long nextRemainder;

    /// <param name="output">Receives the resampled samples in order, in chunks.</param>
    public SincResampler(int inputRate, int outputRate, Action<ReadOnlySpan<float>> output)
        : this(inputRate, outputRate, output, useBlocks: true)
    {
    }

    /// <param name="useBlocks">False: one dot product per output even where the filter has blocks (for tests comparing the two).</param>
    internal SincResampler(int inputRate, int outputRate, Action<ReadOnlySpan<float>> output, bool useBlocks)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputRate);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputRate);
        this.output = output;
        this.useBlocks = useBlocks;
        filter = Filters.Count < MaxCachedFilters
            ? Filters.GetOrAdd((inputRate, outputRate), rates => new Filter(rates.Item1, rates.Item2))
            : new Filter(inputRate, outputRate);

        // Zeros before the first sample, so the first outputs have history to look back on.
        history = new float[Math.Max(8192, 4 * filter.LongestRead)];
        historyStart = -filter.HalfTaps;
        historyCount = filter.HalfTaps;
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
        var totalOutputs = ((inputCount * filter.Up) + filter.Down - 1) / filter.Down;
        var silence = new float[filter.LongestRead + 2];
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
        // Locals, not fields, in the loop: the JIT keeps them in registers.
        var (up, halfTaps, stride, blocks) = (filter.Up, filter.HalfTaps, filter.Stride, useBlocks ? filter.Blocks : null);
        var (outputIndex, center, remainder) = (nextOutput, nextCenter, nextRemainder);
        var historyEnd = historyStart + historyCount;
        ReadOnlySpan<float> samples = history.AsSpan(0, historyCount);
        var chunk = outputChunk.AsSpan();
        var produced = 0;
        while (outputIndex < outputLimit)
        {
            if (produced > chunk.Length - OutputBlocks.Size)
            {
                output(chunk[..produced]);
                produced = 0;
            }

            var first = center - halfTaps + 1;
            var steps = 1;
            if (blocks is not null && outputIndex % OutputBlocks.Size == 0 && outputLimit - outputIndex >= OutputBlocks.Size)
            {
                var pattern = (int)(outputIndex / OutputBlocks.Size % blocks.Patterns);
                if (first + blocks.Reach(pattern) > historyEnd)
                {
                    break;
                }

                blocks.Run(pattern, samples[(int)(first - historyStart)..], chunk.Slice(produced, OutputBlocks.Size));
                steps = OutputBlocks.Size;
            }
            else
            {
                var phase = filter.Phase(remainder, ref first);

                // The padded row reaches stride - taps samples beyond the last real tap.
                if (first + stride > historyEnd)
                {
                    break;
                }

                chunk[produced] = Dot(filter.Row(phase), samples.Slice((int)(first - historyStart), stride));
            }

            produced += steps;
            outputIndex += steps;
            var (advance, rest) = steps == 1 ? (filter.Step, filter.StepRemainder) : (filter.BlockStep, filter.BlockStepRemainder);
            center += advance;
            remainder += rest;
            if (remainder >= up)
            {
                remainder -= up;
                center++;
            }
        }

        (nextOutput, nextCenter, nextRemainder) = (outputIndex, center, remainder);
        if (produced > 0)
        {
            output(chunk[..produced]);
        }
    }

    /// <summary>Drops history no future output can reach.</summary>
    private void Compact()
    {
        var oldestNeeded = nextCenter - filter.HalfTaps + 1;
        var drop = (int)Math.Clamp(oldestNeeded - historyStart, 0, historyCount);
        if (drop == 0)
        {
            return;
        }

        history.AsSpan(drop, historyCount - drop).CopyTo(history);
        historyStart += drop;
        historyCount -= drop;
    }

    /// <summary>Σ a[i]·b[i] over spans whose length is a multiple of <see cref="Filter.TapAlignment"/>.</summary>
    private static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        // Two independent sums so the multiply-adds do not wait on each other. The spans were sliced (bounds-checked)
        // to the same length, so the loads stay inside them.
        ref var x = ref MemoryMarshal.GetReference(a);
        ref var y = ref MemoryMarshal.GetReference(b);
        var length = (nuint)a.Length;
        var width = (nuint)Vector<float>.Count;
        Vector<float> s0 = default, s1 = default;
        nuint i = 0;
        for (; i + (2 * width) <= length; i += 2 * width)
        {
            s0 = Vector.MultiplyAddEstimate(Vector.LoadUnsafe(ref x, i), Vector.LoadUnsafe(ref y, i), s0);
            s1 = Vector.MultiplyAddEstimate(Vector.LoadUnsafe(ref x, i + width), Vector.LoadUnsafe(ref y, i + width), s1);
        }

        for (; i < length; i += width)
        {
            s0 = Vector.MultiplyAddEstimate(Vector.LoadUnsafe(ref x, i), Vector.LoadUnsafe(ref y, i), s0);
        }

        return Vector.Sum(s0 + s1);
    }

    /// <summary>Whether outputs at these rates are computed sixteen at a time on this machine.</summary>
    internal static bool HasBlocks(int inputRate, int outputRate) => new Filter(inputRate, outputRate).Blocks is not null;

    /// <summary>The polyphase filter for one pair of rates: immutable, shared by every resampler at those rates.</summary>
    private sealed class Filter
    {
        // Rows are padded with zero taps to a whole number of the widest vectors, so the dot product has no scalar
        // tail; the padding reads a few samples past the filter's end (weighted zero), which only delays output slightly.
        public const int TapAlignment = 16;

        private readonly int phases;
        private readonly float[] rows;

        public Filter(int inputRate, int outputRate)
        {
            var divisor = (int)BigInteger.GreatestCommonDivisor(inputRate, outputRate);
            Up = outputRate / divisor;
            Down = inputRate / divisor;
            (Step, StepRemainder) = Math.DivRem(Down, Up);
            (BlockStep, BlockStepRemainder) = Math.DivRem(OutputBlocks.Size * Down, Up);
            phases = (int)Math.Min(Up, MaxPhases);

            // Cut-off in cycles per input sample, below the Nyquist frequency of the slower side.
            var cutoff = 0.5 * Math.Min(1.0, (double)outputRate / inputRate) * Rolloff;
            HalfTaps = (int)Math.Ceiling(ZeroCrossings / (2 * cutoff));
            Taps = 2 * HalfTaps;
            Stride = (Taps + TapAlignment - 1) / TapAlignment * TapAlignment;
            rows = BuildRows(cutoff);
            Blocks = OutputBlocks.TryBuild(this);
            LongestRead = Math.Max(Stride, Blocks?.LongestReach ?? 0);
        }

        /// <summary>Output samples per <see cref="Down"/> input samples (the reduced rate ratio).</summary>
        public long Up { get; }

        public long Down { get; }

        public long Step { get; }

        public long StepRemainder { get; }

        public long BlockStep { get; }

        public long BlockStepRemainder { get; }

        public int HalfTaps { get; }

        public int Taps { get; }

        /// <summary>Length of a padded row.</summary>
        public int Stride { get; }

        /// <summary>Most input samples one step of <see cref="Emit"/> reads.</summary>
        public int LongestRead { get; }

        public OutputBlocks? Blocks { get; }

        public ReadOnlySpan<float> Row(int phase) => rows.AsSpan(phase * Stride, Stride);

        /// <summary>The filter phase for an output whose position's remainder is <paramref name="remainder"/>.</summary>
        /// <param name="first">The output's first input sample, moved on by one where the phase rounds up to a whole sample.</param>
        public int Phase(long remainder, ref long first)
        {
            if (phases == Up)
            {
                return (int)remainder;
            }

            var phase = (int)Math.Round((double)remainder * phases / Up);
            if (phase == phases)
            {
                first++;
                return 0;
            }

            return phase;
        }

        private float[] BuildRows(double cutoff)
        {
            var coefficients = new float[phases * Stride];
            var besselBeta = BesselI0(KaiserBeta);
            for (var phase = 0; phase < phases; phase++)
            {
                var fraction = (double)phase / phases;
                for (var tap = 0; tap < Taps; tap++)
                {
                    // Tap t weighs input sample (center - halfTaps + 1 + t), which lies (fraction - offset) samples away.
                    var distance = fraction - (tap - HalfTaps + 1);
                    var x = distance / (HalfTaps + 1);
                    var window = Math.Abs(x) >= 1 ? 0 : BesselI0(KaiserBeta * Math.Sqrt(1 - (x * x))) / besselBeta;
                    var argument = 2 * cutoff * distance;
                    var sinc = argument == 0 ? 1 : Math.Sin(Math.PI * argument) / (Math.PI * argument);
                    coefficients[(phase * Stride) + tap] = (float)(2 * cutoff * sinc * window);
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
    }

    /// <summary>
    /// Sixteen consecutive outputs at once, one per vector lane: each input sample they share is broadcast and
    /// multiplied into all sixteen, with the coefficients laid out per input sample (zero where an output's window does
    /// not reach). That replaces sixteen dot products and their horizontal sums by aligned vector loads and
    /// multiply-adds — about twice as fast. The outputs' positions repeat every lcm(up, 16) outputs, so a block's
    /// layout is one of a few patterns (10 for 44.1 kHz → 16 kHz).
    /// </summary>
    private sealed class OutputBlocks
    {
        public const int Size = 16;

        // Rates whose pattern set would be larger than this (odd ratios, thousands of phases) use the dot product.
        private const int MaxCoefficients = 256 * 1024;

        private const int Alignment = 64;

        private readonly float[] coefficients;
        private readonly int[] starts;
        private readonly int[] reaches;

        private OutputBlocks(float[] coefficients, int[] starts, int[] reaches)
        {
            this.coefficients = coefficients;
            this.starts = starts;
            this.reaches = reaches;
            LongestReach = reaches.Max();
        }

        public int Patterns => starts.Length;

        public int LongestReach { get; }

        /// <summary>Input samples a block of this pattern reads, from its first output's first tap.</summary>
        public int Reach(int pattern) => reaches[pattern];

        public static OutputBlocks? TryBuild(Filter filter)
        {
            // Lanes of eight or sixteen floats; elsewhere (Arm's 128-bit vectors) the dot product is as good.
            if (!Vector256.IsHardwareAccelerated)
            {
                return null;
            }

            var patterns = filter.Up / (long)BigInteger.GreatestCommonDivisor(filter.Up, Size);
            var reach = (int)(((Size - 1) * filter.Down / filter.Up) + 2 + filter.Taps);
            if (patterns * reach * Size > MaxCoefficients)
            {
                return null;
            }

            // Pinned so the 64-byte alignment found here holds: every lane row then sits in one cache line.
            var storage = GC.AllocateArray<float>(((int)patterns * reach * Size) + (Alignment / sizeof(float)), pinned: true);
            var origin = AlignedOrigin(storage);
            var starts = new int[patterns];
            var reaches = new int[patterns];
            var offsets = new long[Size];
            var phases = new int[Size];
            var start = origin;
            for (var pattern = 0; pattern < patterns; pattern++)
            {
                // Offsets count from the block's first output's centre; where the block sits in the stream does not matter.
                var blockCenter = pattern * Size * filter.Down / filter.Up;
                for (var lane = 0; lane < Size; lane++)
                {
                    var position = (pattern * Size * filter.Down) + (lane * filter.Down);
                    long first = (position / filter.Up) - blockCenter;
                    phases[lane] = filter.Phase(position % filter.Up, ref first);
                    offsets[lane] = first;
                }

                var length = (int)offsets.Max() + filter.Taps;
                starts[pattern] = start;
                reaches[pattern] = length;
                for (var lane = 0; lane < Size; lane++)
                {
                    var row = filter.Row(phases[lane]);
                    for (var tap = 0; tap < filter.Taps; tap++)
                    {
                        storage[start + ((offsets[lane] + tap) * Size) + lane] = row[tap];
                    }
                }

                start += length * Size;
            }

            return new OutputBlocks(storage, starts, reaches);
        }

        /// <summary>Writes the block's sixteen outputs; <paramref name="input"/> starts at its first output's first tap.</summary>
        public void Run(int pattern, ReadOnlySpan<float> input, Span<float> destination)
        {
            var length = reaches[pattern];
            input = input[..length];
            destination = destination[..Size];
            var lanes = coefficients.AsSpan(starts[pattern], length * Size);
            ref var x = ref MemoryMarshal.GetReference(input);
            ref var g = ref MemoryMarshal.GetReference(lanes);
            var k = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                // Four sums over alternate input samples, so consecutive multiply-adds are independent.
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; k + 4 <= length; k += 4)
                {
                    a0 = Vector512.MultiplyAddEstimate(Vector512.Create(Unsafe.Add(ref x, k)), Vector512.LoadUnsafe(ref g, (nuint)k * Size), a0);
                    a1 = Vector512.MultiplyAddEstimate(Vector512.Create(Unsafe.Add(ref x, k + 1)), Vector512.LoadUnsafe(ref g, (nuint)(k + 1) * Size), a1);
                    a2 = Vector512.MultiplyAddEstimate(Vector512.Create(Unsafe.Add(ref x, k + 2)), Vector512.LoadUnsafe(ref g, (nuint)(k + 2) * Size), a2);
                    a3 = Vector512.MultiplyAddEstimate(Vector512.Create(Unsafe.Add(ref x, k + 3)), Vector512.LoadUnsafe(ref g, (nuint)(k + 3) * Size), a3);
                }

                for (; k < length; k++)
                {
                    a0 = Vector512.MultiplyAddEstimate(Vector512.Create(Unsafe.Add(ref x, k)), Vector512.LoadUnsafe(ref g, (nuint)k * Size), a0);
                }

                ((a0 + a1) + (a2 + a3)).StoreUnsafe(ref MemoryMarshal.GetReference(destination));
                return;
            }

            // Two halves of eight lanes, two sums each.
            Vector256<float> l0 = default, h0 = default, l1 = default, h1 = default;
            for (; k + 2 <= length; k += 2)
            {
                var s0 = Vector256.Create(Unsafe.Add(ref x, k));
                var s1 = Vector256.Create(Unsafe.Add(ref x, k + 1));
                l0 = Vector256.MultiplyAddEstimate(s0, Vector256.LoadUnsafe(ref g, (nuint)k * Size), l0);
                h0 = Vector256.MultiplyAddEstimate(s0, Vector256.LoadUnsafe(ref g, ((nuint)k * Size) + 8), h0);
                l1 = Vector256.MultiplyAddEstimate(s1, Vector256.LoadUnsafe(ref g, (nuint)(k + 1) * Size), l1);
                h1 = Vector256.MultiplyAddEstimate(s1, Vector256.LoadUnsafe(ref g, ((nuint)(k + 1) * Size) + 8), h1);
            }

            for (; k < length; k++)
            {
                var s0 = Vector256.Create(Unsafe.Add(ref x, k));
                l0 = Vector256.MultiplyAddEstimate(s0, Vector256.LoadUnsafe(ref g, (nuint)k * Size), l0);
                h0 = Vector256.MultiplyAddEstimate(s0, Vector256.LoadUnsafe(ref g, ((nuint)k * Size) + 8), h0);
            }

            ref var output = ref MemoryMarshal.GetReference(destination);
            (l0 + l1).StoreUnsafe(ref output);
            (h0 + h1).StoreUnsafe(ref output, 8);
        }

        private static unsafe int AlignedOrigin(float[] pinned)
        {
            var address = (nuint)Unsafe.AsPointer(ref pinned[0]);
            var misalignment = (int)(address % Alignment);
            return misalignment == 0 ? 0 : (Alignment - misalignment) / sizeof(float);
        }
    }
}
