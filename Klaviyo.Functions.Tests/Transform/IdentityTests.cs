using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

[TestClass]
public sealed class IdentityTests
{
    private static System.Text.Json.Nodes.JsonNode EventProfile(string json, Action<KlaviyoOptions>? configure = null) =>
        Attributes(Single(Transforms.Run(json, configure), KlaviyoEndpoint.CreateEvent))["profile"]!["data"]!["attributes"]!;

    [TestMethod]
    [DataRow("""{"userId":"top","traits":{"userId":"t"},"context":{"traits":{"userId":"c"}}}""", "top")]
    [DataRow("""{"traits":{"userId":"t"},"context":{"traits":{"userId":"c"}}}""", "t")]
    [DataRow("""{"context":{"traits":{"userId":"c"}}}""", "c")]
    [DataRow("""{"userId":42}""", "42")]
    [DataRow("""{"userId":"","anonymousId":"a"}""", "a")]
    public void Track_WithUserIdSources_TakesFirstPresentAsExternalId(string identity, string expected)
    {
        var json = identity.Insert(1, "\"type\":\"track\",\"event\":\"X\",");

        Assert.AreEqual(expected, (string?)EventProfile(json)["external_id"]);
    }

    [TestMethod]
    public void Track_WithAnonymousIdAndEmail_DoesNotUseAnonymousIdAsExternalId()
    {
        var profile = EventProfile("""{"type":"track","event":"X","anonymousId":"a","context":{"traits":{"email":"e@example.com"}}}""");

        Assert.IsNull(profile["external_id"]);
        Assert.AreEqual("a", (string?)profile["anonymous_id"]);
        Assert.AreEqual("e@example.com", (string?)profile["email"]);
    }

    [TestMethod]
    [DataRow("""{"traits":{"email":"t@x.io"},"context":{"traits":{"email":"c@x.io"}},"properties":{"email":"p@x.io"}}""", "t@x.io")]
    [DataRow("""{"context":{"traits":{"email":"c@x.io"}},"properties":{"email":"p@x.io"}}""", "c@x.io")]
    [DataRow("""{"properties":{"email":"p@x.io"}}""", "p@x.io")]
    public void Track_WithEmailSources_TakesFirstPresent(string identity, string expected)
    {
        var json = identity.Insert(1, "\"type\":\"track\",\"event\":\"X\",");

        Assert.AreEqual(expected, (string?)EventProfile(json)["email"]);
    }

    [TestMethod]
    [DataRow("identify")]
    [DataRow("track")]
    [DataRow("screen")]
    [DataRow("group")]
    public void Event_WithNoIdentifier_IsInvalid(string type)
    {
        var json = """{"type":"TYPE","event":"X","name":"X","groupId":"L1","context":{"traits":{"firstName":"Jane"}}}""".Replace("TYPE", type, StringComparison.Ordinal);
        var invalid = Invalid(Transforms.Run(json));

        Assert.AreEqual("userId", invalid.Field);
        Assert.AreEqual("no user identifier: need userId, anonymousId, email or phone", invalid.Rule);
    }

    [TestMethod]
    public void Page_WithNoIdentifier_IsInvalid()
    {
        var invalid = Invalid(Transforms.Run("""{"type":"page","name":"Home"}""", o => o.SendPageAsTrack = true));

        Assert.AreEqual("userId", invalid.Field);
    }

    [TestMethod]
    public void Identify_WithEnforceEmailAsPrimary_DropsExternalIdAndSetsIdProperty()
    {
        var result = Transforms.Run("""{"type":"identify","userId":"u-1","traits":{"email":"e@example.com","_id":"spoof"}}""", o => o.EnforceEmailAsPrimary = true);
        var attributes = Attributes(Single(result, KlaviyoEndpoint.ProfileImport));

        Assert.IsFalse(attributes.ContainsKey("external_id"));
        Assert.AreEqual("u-1", (string?)attributes["properties"]!["_id"]);
        Assert.AreEqual("e@example.com", (string?)attributes["email"]);
    }

    [TestMethod]
    public void Track_WithEnforceEmailAsPrimaryAndTraitsUserId_SetsIdFromIt()
    {
        var profile = EventProfile("""{"type":"track","event":"X","traits":{"userId":"t-1"},"context":{"traits":{"email":"e@example.com"}}}""", o => o.EnforceEmailAsPrimary = true);

        Assert.IsNull(profile["external_id"]);
        Assert.AreEqual("t-1", (string?)profile["properties"]!["_id"]);
    }

    [TestMethod]
    [DataRow("""{"type":"identify","userId":"u-1"}""")]
    [DataRow("""{"type":"track","event":"X","userId":"u-1","context":{"traits":{"phone":"555"}}}""")]
    public void Event_WithEnforceEmailAsPrimaryAndNoEmailOrPhone_IsInvalid(string json)
    {
        var invalid = Invalid(Transforms.Run(json, o => o.EnforceEmailAsPrimary = true));

        Assert.AreEqual("email", invalid.Field);
        Assert.Contains("EnforceEmailAsPrimary", invalid.Rule);
    }

    [TestMethod]
    public void Track_WithKxInContextTraits_SendsKx()
    {
        Assert.AreEqual("kx-1", (string?)EventProfile("""{"type":"track","event":"X","userId":"u","context":{"traits":{"_kx":"kx-1"}}}""")["_kx"]);
    }

    private const string ProfileIdEntry = """{"type":"klaviyo-profileId","id":"01KPROFILE"}""";

    [TestMethod]
    public void Identify_WithKlaviyoProfileIdExternalId_SendsItAsDataId()
    {
        var json = """{"type":"identify","userId":"u-1","context":{"externalId":[{"type":"other","id":"x"},ENTRY]}}""".Replace("ENTRY", ProfileIdEntry, StringComparison.Ordinal);
        var body = Body(Single(Transforms.Run(json), KlaviyoEndpoint.ProfileImport));

        Assert.AreEqual("01KPROFILE", (string?)body["data"]!["id"]);
        Assert.AreEqual("u-1", (string?)body["data"]!["attributes"]!["external_id"], "the identifiers are still sent");
    }

    [TestMethod]
    public void Track_WithKlaviyoProfileIdExternalId_SendsItAsProfileDataId()
    {
        var json = """{"type":"track","event":"X","userId":"u-1","context":{"externalId":[ENTRY]}}""".Replace("ENTRY", ProfileIdEntry, StringComparison.Ordinal);
        var profile = Attributes(Single(Transforms.Run(json), KlaviyoEndpoint.CreateEvent))["profile"]!["data"]!;

        Assert.AreEqual("01KPROFILE", (string?)profile["id"]);
        Assert.AreEqual("profile", (string?)profile["type"]);
    }

    [TestMethod]
    public void Group_WithKlaviyoProfileIdExternalId_SendsItOnProfileImport()
    {
        var json = """{"type":"group","groupId":"L1","userId":"u-1","context":{"externalId":[ENTRY]}}""".Replace("ENTRY", ProfileIdEntry, StringComparison.Ordinal);
        var requests = Requests(Transforms.Run(json));

        Assert.AreEqual(KlaviyoEndpoint.ProfileImport, requests[0].Endpoint);
        Assert.AreEqual("01KPROFILE", (string?)Body(requests[0])["data"]!["id"]);
    }

    [TestMethod]
    public void Track_WithNumericKlaviyoProfileId_SendsItAsString()
    {
        var json = """{"type":"track","event":"X","userId":"u-1","context":{"externalId":[{"type":"klaviyo-profileId","id":12345678}]}}""";

        Assert.AreEqual("12345678", (string?)Attributes(Single(Transforms.Run(json), KlaviyoEndpoint.CreateEvent))["profile"]!["data"]!["id"]);
    }

    [TestMethod]
    [DataRow("""[{"type":"klaviyo-profileId","id":""}]""", true, DisplayName = "empty id")]
    [DataRow("""[{"type":"klaviyo-profileId","id":{"v":1}}]""", true, DisplayName = "object id")]
    [DataRow("""[{"type":"klaviyo-profileId"}]""", true, DisplayName = "no id")]
    [DataRow("""[{"type":"KLAVIYO-profile_v2","id":"a@b.co"}]""", false, DisplayName = "other type")]
    [DataRow("""[{"type":7,"id":"x"}, "loose", null]""", false, DisplayName = "odd entries")]
    [DataRow("""{"type":"klaviyo-profileId","id":"x"}""", false, DisplayName = "not an array")]
    public void Identify_WithUnusableKlaviyoProfileId_SendsNoDataId(string externalId, bool warns)
    {
        var result = Transforms.Run("""{"type":"identify","userId":"u-1","context":{"externalId":EXT}}""".Replace("EXT", externalId, StringComparison.Ordinal));
        var body = Body(Single(result, KlaviyoEndpoint.ProfileImport));

        Assert.IsNull(body["data"]!["id"]);
        Assert.AreEqual(warns, Planned(result).Plan.Warnings.Any(w => w.Contains("klaviyo-profileId", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void Track_WithOnlyKlaviyoProfileId_IsInvalidForNoIdentifier()
    {
        var json = """{"type":"track","event":"X","context":{"externalId":[ENTRY]}}""".Replace("ENTRY", ProfileIdEntry, StringComparison.Ordinal);
        var invalid = Invalid(Transforms.Run(json));

        Assert.AreEqual(global::Klaviyo.Functions.Transform.Identity.NoIdentifierRule, invalid.Rule, "a Klaviyo profile id is not one of the spec's identifiers");
    }
}
