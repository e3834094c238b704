using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace LockN.Keys;

/// <summary>
/// Hashes key secrets for storage. With <c>Keys:HashSecret</c> set (the same on every node) it is an HMAC-SHA256
/// under that server secret, so a stolen database alone cannot even confirm a guessed key; without it, SHA-256,
/// which is enough for 256-bit random secrets. Each record remembers its scheme, so setting the secret later does
/// not lock out older keys.
/// </summary>
internal sealed class ApiKeyHasher(IOptions<KeysOptions> options)
{
    public const string Sha256Scheme = "sha256";
    public const string HmacScheme = "hmac-sha256";

    private readonly byte[]? serverSecret = string.IsNullOrEmpty(options.Value.HashSecret) ? null : Encoding.UTF8.GetBytes(options.Value.HashSecret);

    /// <summary>The scheme new keys get.</summary>
    public string CurrentScheme => serverSecret is null ? Sha256Scheme : HmacScheme;

    public byte[] Hash(string secret, string scheme)
    {
        var bytes = Encoding.ASCII.GetBytes(secret);
        return scheme switch
        {
            Sha256Scheme => SHA256.HashData(bytes),
            HmacScheme when serverSecret is not null => HMACSHA256.HashData(serverSecret, bytes),
            HmacScheme => throw new InvalidOperationException("A key was stored with an HMAC, but Keys:HashSecret is not set on this node."),
            _ => throw new InvalidOperationException($"Unknown key hash scheme '{scheme}'."),
        };
    }

    /// <summary>Constant-time comparison of a presented secret against a stored hash.</summary>
    public bool Matches(string secret, string scheme, byte[] storedHash) =>
        CryptographicOperations.FixedTimeEquals(Hash(secret, scheme), storedHash);
}
