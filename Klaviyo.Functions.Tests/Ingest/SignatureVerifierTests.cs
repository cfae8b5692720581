using System.Security.Cryptography;
using System.Text;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Tests.TestSupport;

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

/// <summary><c>Ingest:SignatureScheme=segment-sha1</c> against bodies and signatures written by Node (spec section 7).</summary>
[TestClass]
public sealed class SegmentSignatureVerifierTests
{
    private static SignatureVerifier Segment(string? secret = null) => new(secret ?? SegmentSignedFixtures.Secret, segmentSha1: true);

    [TestMethod]
    public void Verify_SingleEventSignedByNode_IsAccepted()
    {
        Assert.IsTrue(Segment().Verify(SegmentSignedFixtures.Single, SegmentSignedFixtures.SingleSignature));
    }

    [TestMethod]
    public void Verify_UpperCaseHexAndSurroundingSpace_IsAccepted()
    {
        Assert.IsTrue(Segment().Verify(SegmentSignedFixtures.Single, " " + SegmentSignedFixtures.SingleSignature.ToUpperInvariant() + " "));
    }

    [TestMethod]
    public void Verify_BatchSignedOverItsFirstEventOnly_IsAccepted()
    {
        Assert.IsTrue(Segment().Verify(SegmentSignedFixtures.Batch, SegmentSignedFixtures.BatchFirstElementSignature));
    }

    [TestMethod]
    public void Verify_BatchSignedWhole_IsAccepted()
    {
        Assert.IsTrue(Segment().Verify(SegmentSignedFixtures.Batch, SegmentSignedFixtures.BatchWholeSignature));
    }

    [TestMethod]
    public void Verify_BatchWithChangedFirstEvent_IsRejected()
    {
        var changed = (byte[])SegmentSignedFixtures.Batch.Clone();
        var at = Array.IndexOf(changed, (byte)'p'); // the first event's "type" becomes "tyqe"
        changed[at] = (byte)'q';

        Assert.IsFalse(Segment().Verify(changed, SegmentSignedFixtures.BatchFirstElementSignature));
    }

    [TestMethod]
    public void Verify_FirstEventSignatureOnASingleObject_IsRejected()
    {
        // The first-element rule is for arrays only: an object's signature covers the whole body.
        Assert.IsFalse(Segment().Verify(SegmentSignedFixtures.Single, SegmentSignedFixtures.BatchFirstElementSignature));
    }

    [TestMethod]
    public void Verify_SignedEventAloneInAnArray_IsAccepted()
    {
        var batch = Encoding.UTF8.GetString(SegmentSignedFixtures.Batch);
        var firstOnly = batch[..(batch.IndexOf("},{\"type\":\"identify\"", StringComparison.Ordinal) + 1)] + "]";

        Assert.IsTrue(Segment().Verify(Encoding.UTF8.GetBytes(firstOnly), SegmentSignedFixtures.BatchFirstElementSignature));
    }

    [TestMethod]
    public void Verify_SignedEventNoLongerFirst_IsRejected()
    {
        var batch = Encoding.UTF8.GetString(SegmentSignedFixtures.Batch);
        var reordered = "[{\"type\":\"alias\",\"userId\":\"x\"}," + batch[1..];

        Assert.IsFalse(Segment().Verify(Encoding.UTF8.GetBytes(reordered), SegmentSignedFixtures.BatchFirstElementSignature));
    }

    [TestMethod]
    public void Verify_WrongSecret_IsRejected()
    {
        Assert.IsFalse(Segment("another-secret").Verify(SegmentSignedFixtures.Single, SegmentSignedFixtures.SingleSignature));
        Assert.IsFalse(Segment("another-secret").Verify(SegmentSignedFixtures.Batch, SegmentSignedFixtures.BatchFirstElementSignature));
    }

    [TestMethod]
    public void Verify_Sha256SchemeHeaderUnderSegmentScheme_IsRejected()
    {
        var sha256 = "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(SegmentSignedFixtures.Secret), SegmentSignedFixtures.Single));

        Assert.IsFalse(Segment().Verify(SegmentSignedFixtures.Single, sha256));
    }

    [TestMethod]
    public void Verify_SegmentSignatureUnderDefaultScheme_IsRejected()
    {
        Assert.IsFalse(new SignatureVerifier(SegmentSignedFixtures.Secret).Verify(SegmentSignedFixtures.Single, SegmentSignedFixtures.SingleSignature));
    }

    [TestMethod]
    [DataRow(null, DisplayName = "missing")]
    [DataRow("", DisplayName = "empty")]
    [DataRow("sha1=491a74220fa0d656d0ef890055c9733ae63ae0ee", DisplayName = "prefixed")]
    [DataRow("491a74220fa0d656d0ef890055c9733ae63ae0e", DisplayName = "too short")]
    [DataRow("491a74220fa0d656d0ef890055c9733ae63ae0eg", DisplayName = "not hex")]
    public void Verify_MalformedHeader_IsRejected(string? header)
    {
        Assert.IsFalse(Segment().Verify(SegmentSignedFixtures.Single, header));
    }

    [TestMethod]
    [DataRow("[]", DisplayName = "empty array")]
    [DataRow("[{\"type\":", DisplayName = "cut off")]
    [DataRow("not json", DisplayName = "not json")]
    public void Verify_BodyWithoutAFirstElement_IsRejectedWithoutThrowing(string body)
    {
        Assert.IsFalse(Segment().Verify(Encoding.UTF8.GetBytes(body), SegmentSignedFixtures.BatchFirstElementSignature));
    }
}
