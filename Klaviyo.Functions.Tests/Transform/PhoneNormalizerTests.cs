using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

[TestClass]
public sealed class PhoneNormalizerTests
{
    [TestMethod]
    [DataRow("+14155552671", "+14155552671")]
    [DataRow("+1 (415) 555-2671", "+14155552671")]
    [DataRow("+1.415.555.2671", "+14155552671")]
    [DataRow("0044 20 7946 0958", "+442079460958")]
    [DataRow("+49 30 901820", "+4930901820")]
    [DataRow("+81-3-1234-5678", "+81312345678")]
    public void ToE164_WithFormattedNumber_Normalises(string raw, string expected)
    {
        Assert.AreEqual(expected, PhoneNormalizer.ToE164(raw));
    }

    [TestMethod]
    [DataRow("415-555-2671", DisplayName = "no country code")]
    [DataRow("+0123456789", DisplayName = "leading zero")]
    [DataRow("+1234", DisplayName = "too short")]
    [DataRow("+1234567890123456", DisplayName = "more than 15 digits")]
    [DataRow("+1 415 CALL NOW", DisplayName = "letters")]
    [DataRow("+999 1234567", DisplayName = "calling code libphonenumber does not support")]
    [DataRow("", DisplayName = "empty")]
    public void ToE164_WithNonE164_ReturnsNull(string raw)
    {
        Assert.IsNull(PhoneNormalizer.ToE164(raw));
    }

    [TestMethod]
    public void Identify_WithNonE164Phone_KeepsItAsProfilePropertyAndWarns()
    {
        var result = Transforms.Run("""{"type":"identify","userId":"u-1","traits":{"phone":"555-2671"}}""");
        var attributes = Attributes(Single(result, KlaviyoEndpoint.ProfileImport));

        Assert.IsFalse(attributes.ContainsKey("phone_number"));
        Assert.AreEqual("555-2671", (string?)attributes["properties"]!["phone"]);
        Assert.HasCount(1, Planned(result).Plan.Warnings);
        Assert.Contains("traits.phone", Planned(result).Plan.Warnings[0]);
        Assert.DoesNotContain("555", Planned(result).Plan.Warnings[0], "the warning does not log the number");
    }

    [TestMethod]
    public void Track_WithOnlyNonE164Phone_IsInvalidForNoIdentifier()
    {
        var invalid = Invalid(Transforms.Run("""{"type":"track","event":"X","context":{"traits":{"phone":"12345"}}}"""));

        Assert.AreEqual("no user identifier: need userId, anonymousId, email or phone", invalid.Rule);
    }

    [TestMethod]
    public void Track_WithOnlyE164Phone_UsesPhoneAsIdentifier()
    {
        var profile = Attributes(Single(Transforms.Run("""{"type":"track","event":"X","properties":{"phone":"+14155552671"}}"""), KlaviyoEndpoint.CreateEvent))["profile"]!["data"]!["attributes"]!;

        Assert.AreEqual("+14155552671", (string?)profile["phone_number"]);
        Assert.IsNull(profile["external_id"]);
    }
}
