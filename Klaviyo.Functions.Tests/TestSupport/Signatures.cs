using System.Security.Cryptography;
using System.Text;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>What a sender puts in <c>X-Signature</c> (spec section 7), computed here rather than by the code under test.</summary>
internal static class Signatures
{
    public static string Sign(ReadOnlySpan<byte> body, string signingSecret) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(signingSecret), body));
}
