using System.Security.Cryptography;
using System.Text;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Ingest;

/// <summary>
/// Checks <c>X-Signature: sha256=&lt;hex HMAC-SHA256 of the raw body&gt;</c> against <c>Ingest:SigningSecret</c>
/// (spec section 7). The comparison is constant-time so the answer's timing says nothing about the expected value.
/// </summary>
internal sealed class SignatureVerifier
{
    public const string HeaderName = "X-Signature";
    private const string Scheme = "sha256=";

    private readonly byte[]? _key;
    private readonly bool _unresolved;

    public SignatureVerifier(IOptions<IngestOptions> options)
        : this(options.Value.SigningSecret)
    {
    }

    public SignatureVerifier(string? signingSecret)
    {
        _key = string.IsNullOrEmpty(signingSecret) ? null : Encoding.UTF8.GetBytes(signingSecret);
        // The reference's text is no secret (it names a vault URI): never let it verify a signature.
        _unresolved = KeyVaultReference.IsUnresolved(signingSecret);
    }

    /// <summary>False when no signing secret is configured: every request is accepted then.</summary>
    public bool IsRequired => _key is not null;

    /// <summary>True when no secret is configured or <paramref name="header"/> is the body's signature.</summary>
    public bool Verify(ReadOnlySpan<byte> body, string? header)
    {
        if (_key is null)
        {
            return true;
        }
        var value = header.AsSpan().Trim();
        if (_unresolved || !value.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        var hex = value[Scheme.Length..];
        Span<byte> claimed = stackalloc byte[HMACSHA256.HashSizeInBytes];
        if (hex.Length != HMACSHA256.HashSizeInBytes * 2
            || Convert.FromHexString(hex, claimed, out _, out var written) != System.Buffers.OperationStatus.Done
            || written != HMACSHA256.HashSizeInBytes)
        {
            return false;
        }
        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(_key, body, expected);
        return CryptographicOperations.FixedTimeEquals(expected, claimed);
    }
}
