using System.Security.Cryptography;
using System.Text;
using Klaviyo.Functions.Ingest;

namespace Klaviyo.Functions.Tests.Ingest;

[TestClass]
public sealed class SignatureVerifierTests
{
    private static readonly byte[] Body = Encoding.UTF8.GetBytes("""{"type":"track","event":"Clicked"}""");

    private static string Expected(string secret, byte[] body) =>
        "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    [TestMethod]
    public void Verify_NoSecretConfigured_AcceptsAnything()
    {
        var verifier = new SignatureVerifier((string?)null);

        Assert.IsFalse(verifier.IsRequired);
        Assert.IsTrue(verifier.Verify(Body, null));
        Assert.IsTrue(verifier.Verify(Body, "sha256=junk"));
    }

    [TestMethod]
    public void Verify_HmacSha256OfRawBody_IsAccepted()
    {
        var verifier = new SignatureVerifier("s3cret");

        Assert.IsTrue(verifier.Verify(Body, Expected("s3cret", Body)));
    }

    [TestMethod]
    public void Verify_UnresolvedKeyVaultReference_RefusesEvenItsOwnSignature()
    {
        // The reference text names a vault URI, not a secret: anyone could compute an HMAC keyed with it.
        const string reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/signing/)";
        var verifier = new SignatureVerifier(reference);

        Assert.IsTrue(verifier.IsRequired);
        Assert.IsFalse(verifier.Verify(Body, Expected(reference, Body)));
        Assert.IsFalse(verifier.Verify(Body, null));
    }

    [TestMethod]
    [DataRow(null, DisplayName = "missing")]
    [DataRow("", DisplayName = "empty")]
    [DataRow("sha256=", DisplayName = "no digest")]
    [DataRow("sha1=0123", DisplayName = "other scheme")]
    [DataRow("sha256=zz", DisplayName = "not hex")]
    [DataRow("sha256=00", DisplayName = "too short")]
    public void Verify_MalformedHeader_IsRejected(string? header)
    {
        Assert.IsFalse(new SignatureVerifier("s3cret").Verify(Body, header));
    }

    [TestMethod]
    public void Verify_DigestWithoutSchemePrefix_IsRejected()
    {
        var digestOnly = Expected("s3cret", Body)["sha256=".Length..];

        Assert.IsFalse(new SignatureVerifier("s3cret").Verify(Body, digestOnly));
    }

    [TestMethod]
    public void Verify_SignatureOfOneChangedByte_IsRejected()
    {
        var changed = (byte[])Body.Clone();
        changed[^2] ^= 1;

        Assert.IsFalse(new SignatureVerifier("s3cret").Verify(changed, Expected("s3cret", Body)));
    }

    [TestMethod]
    public void Verify_SignatureWithOtherSecret_IsRejected()
    {
        Assert.IsFalse(new SignatureVerifier("s3cret").Verify(Body, Expected("s3cret2", Body)));
    }
}
