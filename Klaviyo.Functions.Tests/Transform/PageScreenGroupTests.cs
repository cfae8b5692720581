using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

[TestClass]
public sealed class PageMappingTests
{
    private static void PageAsTrack(KlaviyoOptions o) => o.SendPageAsTrack = true;

    [TestMethod]
    public void Page_WithoutSendPageAsTrack_IsSkipped()
    {
        var result = Transforms.Run("""{"type":"page","userId":"u-1","name":"Home"}""");

        Assert.IsInstanceOfType<TransformResult.Skipped>(result);
        Assert.Contains("SendPageAsTrack", ((TransformResult.Skipped)result).Reason);
    }

    [TestMethod]
    [DataRow("""{"name":"Cart","category":"Shop"}""", "Viewed Shop Cart page")]
    [DataRow("""{"name":"Cart","properties":{"category":"Shop"}}""", "Viewed Shop Cart page")]
    [DataRow("""{"properties":{"name":"Cart"}}""", "Viewed Cart page")]
    [DataRow("""{"name":"Cart"}""", "Viewed Cart page")]
    [DataRow("""{"category":"Shop"}""", "Viewed a Page")]
    [DataRow("""{}""", "Viewed a Page")]
    public void Page_WithSendPageAsTrack_NamesMetricLikeRudderStackWeb(string fields, string expected)
    {
        var json = fields.Insert(1, "\"type\":\"page\",\"userId\":\"u-1\"" + (fields == "{}" ? "" : ","));
        var attributes = Attributes(Single(Transforms.Run(json, PageAsTrack), KlaviyoEndpoint.CreateEvent));

        Assert.AreEqual(expected, (string?)attributes["metric"]!["data"]!["attributes"]!["name"]);
    }

    [TestMethod]
    public void Page_WithAdditionalPageInfo_AttachesPageProperties()
    {
        var json = """{"type":"page","userId":"u-1","name":"Cart","properties":{"path":"/cart","url":"https://x/cart","title":"Cart","custom":1}}""";
        var attributes = Attributes(Single(Transforms.Run(json, o => { o.SendPageAsTrack = true; o.AdditionalPageInfo = true; }), KlaviyoEndpoint.CreateEvent));

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"path":"/cart","url":"https://x/cart","title":"Cart","custom":1}"""), attributes["properties"]));
    }

    [TestMethod]
    public void Page_WithoutAdditionalPageInfo_SendsEmptyProperties()
    {
        var json = """{"type":"page","userId":"u-1","name":"Cart","properties":{"path":"/cart"}}""";
        var attributes = Attributes(Single(Transforms.Run(json, PageAsTrack), KlaviyoEndpoint.CreateEvent));

        Assert.IsEmpty(attributes["properties"]!.AsObject());
    }

    [TestMethod]
    public void Page_WithNameMakingMetricTooLong_IsInvalid()
    {
        var json = """{"type":"page","userId":"u-1","name":"NAME"}""".Replace("NAME", new string('n', 120), StringComparison.Ordinal);
        var invalid = Invalid(Transforms.Run(json, PageAsTrack));

        Assert.AreEqual("name", invalid.Field);
    }
}

[TestClass]
public sealed class ScreenMappingTests
{
    [TestMethod]
    [DataRow("""{"name":"Home","properties":{"name":"P"},"event":"E"}""", "Home")]
    [DataRow("""{"properties":{"name":"P"},"event":"E"}""", "P")]
    [DataRow("""{"event":"E"}""", "E")]
    [DataRow("""{"name":"Product Viewed"}""", "Product Viewed")]
    public void Screen_WithNameSources_UsesFirstPresentWithoutEcommerceConversion(string fields, string expected)
    {
        var json = fields.Insert(1, "\"type\":\"screen\",\"userId\":\"u-1\",");
        var attributes = Attributes(Single(Transforms.Run(json), KlaviyoEndpoint.CreateEvent));

        Assert.AreEqual(expected, (string?)attributes["metric"]!["data"]!["attributes"]!["name"]);
    }

    [TestMethod]
    public void Screen_WithoutAnyName_IsInvalid()
    {
        var invalid = Invalid(Transforms.Run("""{"type":"screen","userId":"u-1","properties":{}}"""));

        Assert.AreEqual("name", invalid.Field);
    }

    [TestMethod]
    public void Screen_WithProperties_SendsThemAndValue()
    {
        var attributes = Attributes(Single(Transforms.Run("""{"type":"screen","userId":"u-1","name":"Home","properties":{"section":"top","value":3}}"""), KlaviyoEndpoint.CreateEvent));

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"section":"top"}"""), attributes["properties"]));
        Assert.AreEqual(3.0, (double)attributes["value"]!);
    }
}

[TestClass]
public sealed class GroupMappingTests
{
    [TestMethod]
    public void Group_WithSubscribeTrue_ImportsProfileFromContextTraitsThenSubscribes()
    {
        var json = """
            {"type":"group","userId":"u-1","groupId":"LIST2",
             "traits":{"subscribe":true,"consent":"email","name":"Acme Inc","industry":"retail"},
             "context":{"traits":{"email":"e@example.com","firstName":"Jane","plan":"pro"}}}
            """;
        var requests = Requests(Transforms.Run(json), profileId: "01G");

        Assert.HasCount(2, requests);
        var profile = Attributes(requests[0]);
        Assert.AreEqual("e@example.com", (string?)profile["email"]);
        Assert.AreEqual("Jane", (string?)profile["first_name"]);
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"plan":"pro"}"""), profile["properties"]), "group traits describe the group, not the profile");
        Assert.AreEqual(KlaviyoEndpoint.SubscribeProfiles, requests[1].Endpoint);
        var job = Body(requests[1])["data"]!;
        Assert.AreEqual("LIST2", (string?)job["relationships"]!["list"]!["data"]!["id"]);
        Assert.AreEqual("01G", (string?)job["attributes"]!["profiles"]!["data"]![0]!["id"]);
    }

    [TestMethod]
    [DataRow("""{}""")]
    [DataRow("""{"subscribe":false}""", "addToList")]
    public void Group_WithoutSubscribeTrue_AddsToGroupList(string traits, string onSubscribeFalse = "unsubscribe")
    {
        var json = """{"type":"group","userId":"u-1","groupId":"LIST2","traits":TRAITS,"context":{"traits":{"email":"e@example.com"}}}""".Replace("TRAITS", traits, StringComparison.Ordinal);
        var requests = Requests(Transforms.Run(json, o => { o.ListId = "IGNORED"; o.OnSubscribeFalse = onSubscribeFalse; }));

        Assert.AreEqual("/api/lists/LIST2/relationships/profiles", requests[1].Path);
    }

    [TestMethod]
    [DataRow("""{"subscribe":true,"consent":"sms"}""", """{"email":"e@x.io","phone":"+14155552671","consent":"email"}""", false, true, DisplayName = "traits consent first")]
    [DataRow("""{"subscribe":true}""", """{"email":"e@x.io","phone":"+14155552671","consent":"sms"}""", false, true, DisplayName = "then context.traits consent")]
    [DataRow("""{"subscribe":true}""", """{"email":"e@x.io","phone":"+14155552671"}""", true, false, DisplayName = "then setting (email)")]
    [DataRow("""{"subscribe":true,"smsConsent":true}""", """{"email":"e@x.io","phone":"+14155552671"}""", true, true, DisplayName = "traits smsConsent")]
    [DataRow("""{"subscribe":true}""", """{"email":"e@x.io","phone":"+14155552671","smsConsent":"true"}""", true, true, DisplayName = "context.traits smsConsent")]
    public void Group_WithConsentSources_SubscribesResolvedChannels(string traits, string contextTraits, bool email, bool sms)
    {
        var json = """{"type":"group","userId":"u-1","groupId":"L9","traits":TRAITS,"context":{"traits":CTX}}"""
            .Replace("TRAITS", traits, StringComparison.Ordinal).Replace("CTX", contextTraits, StringComparison.Ordinal);
        var requests = Requests(Transforms.Run(json));
        var subscriptions = Attributes(requests[1])["profiles"]!["data"]![0]!["attributes"]!["subscriptions"]!.AsObject();

        Assert.AreEqual(email, subscriptions.ContainsKey("email"));
        Assert.AreEqual(sms, subscriptions.ContainsKey("sms"));
    }

    [TestMethod]
    public void Group_WithEmailAndPhoneOnlyInTraits_SubscribesThemAndKeepsProfileAttributesFromContextTraits()
    {
        var json = """
            {"type":"group","userId":"u-1","groupId":"LIST3",
             "traits":{"email":"t@example.com","phone":"+1 415 555 2671","_kx":"kx-t","subscribe":true,"consent":["email","sms"],"industry":"retail"},
             "context":{"traits":{"firstName":"Jane","plan":"pro"}}}
            """;
        var requests = Requests(Transforms.Run(json), profileId: "01G");

        var profile = Attributes(requests[0]);
        Assert.AreEqual("t@example.com", (string?)profile["email"]);
        Assert.AreEqual("+14155552671", (string?)profile["phone_number"]);
        Assert.AreEqual("kx-t", (string?)profile["_kx"]);
        Assert.AreEqual("Jane", (string?)profile["first_name"]);
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"plan":"pro"}"""), profile["properties"]), "group traits are not profile properties");
        Assert.AreEqual(KlaviyoEndpoint.SubscribeProfiles, requests[1].Endpoint);
        var subscribed = Attributes(requests[1])["profiles"]!["data"]![0]!["attributes"]!;
        Assert.AreEqual("t@example.com", (string?)subscribed["email"]);
        Assert.AreEqual("+14155552671", (string?)subscribed["phone_number"]);
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"email":{"marketing":{"consent":"SUBSCRIBED"}},"sms":{"marketing":{"consent":"SUBSCRIBED"}}}"""), subscribed["subscriptions"]));
    }

    [TestMethod]
    public void Group_WithEmailInTraitsAndContextTraits_TraitsWin()
    {
        var json = """{"type":"group","groupId":"LIST3","traits":{"email":"t@example.com","subscribe":true},"context":{"traits":{"email":"c@example.com"}}}""";
        var requests = Requests(Transforms.Run(json));

        Assert.AreEqual("t@example.com", (string?)Attributes(requests[0])["email"]);
        Assert.AreEqual("t@example.com", (string?)Attributes(requests[1])["profiles"]!["data"]![0]!["attributes"]!["email"]);
    }

    [TestMethod]
    public void Group_WithOnlyTraitsEmail_IsNotRefusedForNoIdentifier()
    {
        var requests = Requests(Transforms.Run("""{"type":"group","groupId":"LIST3","traits":{"email":"t@example.com"}}"""));

        Assert.AreEqual("t@example.com", (string?)Attributes(requests[0])["email"]);
        Assert.AreEqual("/api/lists/LIST3/relationships/profiles", requests[1].Path);
    }

    [TestMethod]
    [DataRow("""{"type":"group","userId":"u-1"}""", "is required for group events (it is the Klaviyo list id)")]
    [DataRow("""{"type":"group","userId":"u-1","groupId":""}""", "is required for group events (it is the Klaviyo list id)")]
    [DataRow("""{"type":"group","userId":"u-1","groupId":"../admin"}""", "must be a Klaviyo list id (1 to 64 letters and digits)")]
    [DataRow("""{"type":"group","userId":"u-1","groupId":{"id":1}}""", "must be a string or a number")]
    public void Group_WithMissingOrBadGroupId_IsInvalid(string json, string rule)
    {
        var invalid = Invalid(Transforms.Run(json));

        Assert.AreEqual("groupId", invalid.Field);
        Assert.AreEqual(rule, invalid.Rule);
    }

    private const string SegmentGroup = """
        {"type":"group","userId":"u-1","groupId":"acct-42","traits":{"name":"Acme Inc","industry":"retail","subscribe":true,"removeFromList":"maybe"},
         "context":{"traits":{"email":"e@example.com","firstName":"Jane","plan":"pro"}}}
        """;

    [TestMethod]
    public void Group_SegmentAccountIdUnderDefaultListMode_IsInvalidNamingGroupId()
    {
        // What GroupMode=skip and profile exist for: a Segment groupId is an account, not a Klaviyo list.
        Assert.AreEqual("groupId", Invalid(Transforms.Run(SegmentGroup.Replace("\"maybe\"", "false", StringComparison.Ordinal))).Field);
    }

    [TestMethod]
    public void Group_UnderGroupModeSkip_IsSkippedNamingTheSetting()
    {
        var result = Transforms.Run(SegmentGroup, o => o.GroupMode = "skip");

        Assert.IsInstanceOfType<TransformResult.Skipped>(result);
        Assert.Contains("Klaviyo__GroupMode=skip", ((TransformResult.Skipped)result).Reason);
    }

    [TestMethod]
    public void Group_WithoutAnyIdentifierUnderGroupModeSkip_IsSkippedNotInvalid()
    {
        Assert.IsInstanceOfType<TransformResult.Skipped>(Transforms.Run("""{"type":"group","groupId":"acct-42"}""", o => o.GroupMode = "SKIP"));
    }

    [TestMethod]
    public void Group_UnderGroupModeProfile_ImportsTheProfileAloneIgnoringGroupIdAndListControls()
    {
        var requests = Requests(Transforms.Run(SegmentGroup, o => { o.GroupMode = "profile"; o.ListId = "DEFAULTLIST"; }));

        var import = Assert.ContainsSingle(requests);
        Assert.AreEqual(KlaviyoEndpoint.ProfileImport, import.Endpoint);
        var profile = Attributes(import);
        Assert.AreEqual("e@example.com", (string?)profile["email"]);
        Assert.AreEqual("Jane", (string?)profile["first_name"]);
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"plan":"pro"}"""), profile["properties"]));
    }

    [TestMethod]
    public void Group_UnderGroupModeProfile_WithoutIdentifier_IsStillInvalid()
    {
        Assert.IsInstanceOfType<TransformResult.Invalid>(Transforms.Run("""{"type":"group","groupId":"acct-42"}""", o => o.GroupMode = "profile"));
    }
}
