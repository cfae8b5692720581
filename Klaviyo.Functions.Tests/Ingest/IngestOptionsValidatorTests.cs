using Klaviyo.Functions.Ingest;

namespace Klaviyo.Functions.Tests.Ingest;

[TestClass]
public sealed class IngestOptionsValidatorTests
{
    private static IReadOnlyList<string> Failures(IngestOptions options) =>
        [.. new IngestOptionsValidator().Validate(null, options).Failures ?? []];

    [TestMethod]
    public void Validate_Defaults_Succeeds()
    {
        var options = new IngestOptions();

        Assert.IsEmpty(Failures(options));
        Assert.AreEqual(4 * 1024 * 1024, options.MaxRequestBytes);
        Assert.AreEqual(32 * 1024, options.MaxEventBytes);
        Assert.IsFalse(options.RequiresSignature);
    }

    [TestMethod]
    [DataRow(0, "Ingest__MaxRequestBytes")]
    [DataRow(200 * 1024 * 1024, "Ingest__MaxRequestBytes")]
    public void Validate_MaxRequestBytesOutOfRange_NamesSetting(int value, string setting)
    {
        var failure = Failures(new IngestOptions { MaxRequestBytes = value }).First();

        Assert.StartsWith(setting, failure);
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(1_000_001)]
    public void Validate_MaxEventsPerRequestOutOfRange_NamesSetting(int value)
    {
        var failure = Failures(new IngestOptions { MaxEventsPerRequest = value }).Single();

        Assert.StartsWith("Ingest__MaxEventsPerRequest", failure);
    }

    [TestMethod]
    public void Validate_MaxEventBytesOverServiceBusMessageSize_NamesSetting()
    {
        var failure = Failures(new IngestOptions { MaxEventBytes = 300 * 1024 }).Single();

        Assert.StartsWith("Ingest__MaxEventBytes", failure);
    }

    [TestMethod]
    public void Validate_MaxEventBytesOverMaxRequestBytes_Fails()
    {
        var failure = Failures(new IngestOptions { MaxRequestBytes = 2048, MaxEventBytes = 4096 }).Single();

        Assert.Contains("must not exceed Ingest__MaxRequestBytes", failure);
    }

    [TestMethod]
    public void Validate_BlankSigningSecret_Fails()
    {
        var failure = Failures(new IngestOptions { SigningSecret = "   " }).Single();

        Assert.StartsWith("Ingest__SigningSecret", failure);
    }

    [TestMethod]
    [DataRow("sha1")]
    [DataRow("segment")]
    [DataRow("")]
    public void Validate_UnknownSignatureScheme_FailsNamingTheSetting(string scheme)
    {
        var failure = Failures(new IngestOptions { SignatureScheme = scheme }).Single();

        Assert.StartsWith("Ingest__SignatureScheme", failure);
        Assert.Contains("sha256, segment-sha1", failure);
    }

    [TestMethod]
    [DataRow("sha256", false)]
    [DataRow("segment-sha1", true)]
    [DataRow("Segment-SHA1", true)]
    public void Validate_KnownSignatureScheme_Passes(string scheme, bool segment)
    {
        var options = new IngestOptions { SignatureScheme = scheme };

        Assert.IsEmpty(Failures(options));
        Assert.AreEqual(segment, options.UsesSegmentSignatures);
    }

    [TestMethod]
    public void Validate_UnresolvedKeyVaultSigningSecret_LetsTheAppStart()
    {
        // As for Klaviyo__PrivateApiKey: a first provision starts before references resolve (KeyVaultTimingTests).
        var options = new IngestOptions { SigningSecret = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/signing/)" };

        Assert.IsEmpty(Failures(options));
        Assert.IsTrue(options.SigningSecretUnresolved);
        Assert.IsFalse(new IngestOptions { SigningSecret = "s3cret" }.SigningSecretUnresolved);
    }

    [TestMethod]
    public void Validate_ZeroRetryAfterAndHourLongSendTimeout_NamesBoth()
    {
        var failures = Failures(new IngestOptions { RetryAfter = TimeSpan.Zero, SendTimeout = TimeSpan.FromHours(1) });

        Assert.HasCount(2, failures);
        Assert.Contains(f => f.StartsWith("Ingest__RetryAfter", StringComparison.Ordinal), failures);
        Assert.Contains(f => f.StartsWith("Ingest__SendTimeout", StringComparison.Ordinal), failures);
    }

    [TestMethod]
    public void ToString_WithSigningSecret_DoesNotShowIt()
    {
        Assert.DoesNotContain("s3cret", new IngestOptions { SigningSecret = "s3cret" }.ToString());
    }
}
