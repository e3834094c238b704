namespace LockN.Keys;

/// <summary>Claims an authenticated API key puts on <c>HttpContext.User</c>.</summary>
internal static class ApiKeyClaims
{
    public const string KeyId = "lockn:key_id";
    public const string KeyName = "lockn:key_name";
    public const string Scope = "lockn:scope";
}
