using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Ingest;

/// <summary>
/// Checks <c>X-Signature</c> against <c>Ingest:SigningSecret</c> (spec section 7) in the scheme of
/// <c>Ingest:SignatureScheme</c>: <c>sha256=&lt;hex HMAC-SHA256 of the raw body&gt;</c>, or Segment's bare
/// <c>&lt;hex HMAC-SHA1&gt;</c> of the raw body or, for a JSON array, of the exact bytes of its first element (Segment
/// signs only the first event of a batch). Comparisons are constant-time so the answer's timing says nothing about the
/// expected value.
/// </summary>
internal sealed class SignatureVerifier
{
    public const string HeaderName = "X-Signature";
    private const string Sha256Prefix = "sha256=";

    private readonly byte[]? _key;
    private readonly bool _unresolved;
    private readonly bool _segmentSha1;

    public SignatureVerifier(IOptions<IngestOptions> options)
        : this(options.Value.SigningSecret, options.Value.UsesSegmentSignatures)
    {
    }

    public SignatureVerifier(string? signingSecret, bool segmentSha1 = false)
    {
        _key = string.IsNullOrEmpty(signingSecret) ? null : Encoding.UTF8.GetBytes(signingSecret);
        // The reference's text is no secret (it names a vault URI): never let it verify a signature.
        _unresolved = KeyVaultReference.IsUnresolved(signingSecret);
        _segmentSha1 = segmentSha1;
    }

    /// <summary>False when no signing secret is configured: every request is accepted then.</summary>
    public bool IsRequired => _key is not null;

    /// <summary>What the header must hold, for the 401's text.</summary>
    public string ExpectedForm => _segmentSha1
        ? "<hex HMAC-SHA1 of the raw body, or of the first element of a JSON array> (Ingest__SignatureScheme=segment-sha1)"
        : "sha256=<hex HMAC-SHA256 of the raw body>";

    /// <summary>True when no secret is configured or <paramref name="header"/> is the body's signature.</summary>
    public bool Verify(ReadOnlySpan<byte> body, string? header)
    {
        if (_key is null)
        {
            return true;
        }
        if (_unresolved)
        {
            return false;
        }
        var value = header.AsSpan().Trim();
        return _segmentSha1 ? VerifySegment(_key, body, value) : VerifySha256(_key, body, value);
    }

    private static bool VerifySha256(byte[] key, ReadOnlySpan<byte> body, ReadOnlySpan<char> value)
    {
        if (!value.StartsWith(Sha256Prefix, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        Span<byte> claimed = stackalloc byte[HMACSHA256.HashSizeInBytes];
        if (!TryReadHex(value[Sha256Prefix.Length..], claimed))
        {
            return false;
        }
        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, body, expected);
        return CryptographicOperations.FixedTimeEquals(expected, claimed);
    }

    private static bool VerifySegment(byte[] key, ReadOnlySpan<byte> body, ReadOnlySpan<char> value)
    {
        Span<byte> claimed = stackalloc byte[HMACSHA1.HashSizeInBytes];
        if (!TryReadHex(value, claimed))
        {
            return false;
        }
        Span<byte> expected = stackalloc byte[HMACSHA1.HashSizeInBytes];
        HMACSHA1.HashData(key, body, expected);
        var wholeBody = CryptographicOperations.FixedTimeEquals(expected, claimed);
        if (wholeBody)
        {
            return true;
        }
        var first = FirstArrayElement(body);
        if (first.Length == 0)
        {
            return false;
        }
        HMACSHA1.HashData(key, body.Slice(first.Start, first.Length), expected);
        return CryptographicOperations.FixedTimeEquals(expected, claimed);
    }

    private static bool TryReadHex(ReadOnlySpan<char> hex, Span<byte> into) =>
        hex.Length == into.Length * 2
        && Convert.FromHexString(hex, into, out _, out var written) == System.Buffers.OperationStatus.Done
        && written == into.Length;

    /// <summary>Where the first element of a top-level JSON array lies in <paramref name="body"/>, exactly as sent;
    /// length 0 when the body is no array, is empty, or is not JSON (the validator says why later).</summary>
    internal static (int Start, int Length) FirstArrayElement(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 256 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray || !reader.Read() || reader.TokenType == JsonTokenType.EndArray)
            {
                return (0, 0);
            }
            var start = checked((int)reader.TokenStartIndex);
            reader.Skip();
            return (start, checked((int)reader.BytesConsumed) - start);
        }
        catch (JsonException)
        {
            return (0, 0);
        }
    }
}
