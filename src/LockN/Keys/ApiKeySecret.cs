using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace LockN.Keys;

/// <summary>
/// The key a client presents: <c>lk_</c> + a 10-character public prefix + <c>_</c> + 43 base62 characters
/// (32 random bytes). The prefix finds the record; only a hash of the secret part is ever stored.
/// </summary>
internal static partial class ApiKeySecret
{
    public const string Scheme = "lk_";
    private const int PrefixLength = 10;
    private const int SecretBytes = 32;
    private const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static (string Key, string Prefix, string Secret) Generate()
    {
        var prefix = RandomNumberGenerator.GetString(Base62, PrefixLength);
        var secret = ToBase62(RandomNumberGenerator.GetBytes(SecretBytes));
        return ($"{Scheme}{prefix}_{secret}", prefix, secret);
    }

    public static bool TryParse(string? key, [NotNullWhen(true)] out string? prefix, [NotNullWhen(true)] out string? secret)
    {
        var match = key is null ? Match.Empty : Format().Match(key);
        prefix = match.Success ? match.Groups["prefix"].Value : null;
        secret = match.Success ? match.Groups["secret"].Value : null;
        return match.Success;
    }

    /// <summary>What may be shown of a key in messages: the scheme and prefix, never the secret.</summary>
    public static string Redact(string prefix) => $"{Scheme}{prefix}_…";

    /// <summary>Base62 of the whole number the bytes spell: 32 bytes give 43 characters.</summary>
    private static string ToBase62(byte[] bytes)
    {
        var value = new System.Numerics.BigInteger(bytes, isUnsigned: true);
        var text = new StringBuilder();
        for (var i = 0; i < 43; i++)
        {
            value = System.Numerics.BigInteger.DivRem(value, 62, out var digit);
            text.Append(Base62[(int)digit]);
        }

        return text.ToString();
    }

    [GeneratedRegex("^lk_(?<prefix>[0-9A-Za-z]{10})_(?<secret>[0-9A-Za-z]{43})$", RegexOptions.CultureInvariant)]
    private static partial Regex Format();
}
