namespace LockN.Hosting;

/// <summary>What a value of a type looks like, in words: for a bad setting and for a body field of the wrong type alike.</summary>
internal static class ExpectedValue
{
    public static string Describe(Type? type)
    {
        type = type is null ? null : Nullable.GetUnderlyingType(type) ?? type;
        return type switch
        {
            null => "a valid value",
            _ when type == typeof(string) => "a string",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(byte) || type == typeof(uint) || type == typeof(ulong) => "a whole number",
            _ when type == typeof(double) || type == typeof(float) || type == typeof(decimal) => "a number",
            _ when type == typeof(TimeSpan) => "a duration (hh:mm:ss)",
            _ when type.IsAssignableTo(typeof(IEnumerable<string>)) => "an array of strings",
            _ => "a valid value",
        };
    }
}
