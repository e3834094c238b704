namespace LockN.Streaming;

/// <summary>
/// Positions in a stream's audio: 16 kHz samples counted from the start of the stream, whatever rate the client
/// sends. The pipeline speaks in positions; each protocol turns them into its own units.
/// </summary>
internal static class SamplePosition
{
    public const int Rate = PcmInput.TargetRate;

    public static long ToMilliseconds(long position) => position * 1000 / Rate;

    public static double ToSeconds(long position) => position / (double)Rate;

    /// <summary>Exact: a sample at 16 kHz is 625 ticks.</summary>
    public static TimeSpan ToTime(long position) => TimeSpan.FromTicks(position * TimeSpan.TicksPerSecond / Rate);
}
