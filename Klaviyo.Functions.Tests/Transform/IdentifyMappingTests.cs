using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

[TestClass]
public sealed class IdentifyMappingTests
{
    private const string FullIdentify = """
        {
          "type": "identify", "userId": "u-1", "anonymousId": "anon-1", "messageId": "m-1",
          "context": {
            "ip": "203.0.113.9", "locale": "en-US", "location": { "latitude": 42.36, "longitude": "-71.05" },
            "traits": { "plan": "free", "country": "DE", "_kx": "kx-1", "source": "ctx" }
          },
          "traits": {
            "email": "jane@example.com", "phone": "+1 (415) 555-2671", "firstName": "Jane", "last_name": "Doe",
            "company": { "name": "Acme", "id": 7 }, "title": "CTO", "avatar": "https://img/x.png",
            "address": { "street": "1 Main St", "city": "Boston", "state": "MA", "postalCode": "02118" },
            "street2": "Apt 2", "country": "US", "timezone": "America/New_York",
            "plan": "pro", "tags": ["a", "b"], "prefs": { "news": true, "lang": null }, "removed": null
          }
        }
        """;

    [TestMethod]
    public void Identify_WithFullTraits_ImportsProfileWithIdentifiersAttributesAndLocation()
    {
        var request = Single(Transforms.Run(FullIdentify), KlaviyoEndpoint.ProfileImport);
        var body = Body(request);
        var attributes = Attributes(request);

        Assert.AreEqual(KlaviyoApi.ProfileImportPath, request.Path);
        Assert.AreEqual("profile", (string?)body["data"]!["type"]);
        Assert.AreEqual("jane@example.com", (string?)attributes["email"]);
        Assert.AreEqual("+14155552671", (string?)attributes["phone_number"]);
        Assert.AreEqual("u-1", (string?)attributes["external_id"]);
        Assert.AreEqual("kx-1", (string?)attributes["_kx"]);
        Assert.AreEqual("Jane", (string?)attributes["first_name"]);
        Assert.AreEqual("Doe", (string?)attributes["last_name"]);
        Assert.AreEqual("Acme", (string?)attributes["organization"]);
        Assert.AreEqual("CTO", (string?)attributes["title"]);
        Assert.AreEqual("https://img/x.png", (string?)attributes["image"]);
        Assert.AreEqual("en-US", (string?)attributes["locale"]);
        var location = attributes["location"]!;
        Assert.AreEqual("1 Main St", (string?)location["address1"]);
        Assert.AreEqual("Apt 2", (string?)location["address2"]);
        Assert.AreEqual("Boston", (string?)location["city"]);
        Assert.AreEqual("MA", (string?)location["region"]);
        Assert.AreEqual("US", (string?)location["country"], "traits win over context.traits");
        Assert.AreEqual("02118", (string?)location["zip"]);
        Assert.AreEqual("America/New_York", (string?)location["timezone"]);
        Assert.AreEqual("203.0.113.9", (string?)location["ip"]);
        Assert.AreEqual(42.36, (double)location["latitude"]!);
        Assert.AreEqual("-71.05", (string?)location["longitude"]);
    }

    [TestMethod]
    public void Identify_WithFullTraits_ProfileImportCarriesNoAnonymousId()
    {
        var attributes = Attributes(Single(Transforms.Run(FullIdentify), KlaviyoEndpoint.ProfileImport));

        Assert.IsFalse(attributes.ContainsKey("anonymous_id"), "profile-import no longer accepts anonymous_id");
    }

    [TestMethod]
    public void Identify_WithCustomTraits_KeepsUnconsumedKeysAndLeavesOutTopLevelNulls()
    {
        var properties = Attributes(Single(Transforms.Run(FullIdentify), KlaviyoEndpoint.ProfileImport))["properties"]!.AsObject();

        Assert.AreEqual("pro", (string?)properties["plan"], "traits win over context.traits");
        Assert.AreEqual("ctx", (string?)properties["source"], "context.traits keys are merged in");
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""["a","b"]"""), properties["tags"]));
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"news":true,"lang":null}"""), properties["prefs"]), "nested nulls are sent as they are");
        Assert.IsFalse(properties.ContainsKey("removed"), "top-level nulls are left out");
        foreach (var consumed in new[] { "email", "phone", "firstName", "last_name", "company", "title", "avatar", "address", "street2", "country", "timezone", "_kx", "userId" })
        {
            Assert.IsFalse(properties.ContainsKey(consumed), $"{consumed} is mapped, so not repeated in properties");
        }
    }

    [TestMethod]
    public void Identify_WithoutListId_PlansProfileImportOnly()
    {
        var plan = Planned(Transforms.Run("""{"type":"identify","userId":"u-1"}""")).Plan;

        Assert.HasCount(1, plan.Steps);
        Assert.IsTrue(plan.Steps[0].YieldsProfileId);
        Assert.IsFalse(plan.Steps[0].NeedsProfileId);
    }

    [TestMethod]
    public void Identify_WithSettingListIdAndNoSubscribe_AddsProfileToList()
    {
        var result = Transforms.Run("""{"type":"identify","userId":"u-1","traits":{"email":"a@example.com"}}""", o => o.ListId = "LIST1");
        var requests = Requests(result, profileId: "01ABC");

        Assert.HasCount(2, requests);
        Assert.AreEqual(KlaviyoEndpoint.AddProfilesToList, requests[1].Endpoint);
        Assert.AreEqual("/api/lists/LIST1/relationships/profiles", requests[1].Path);
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"data":[{"type":"profile","id":"01ABC"}]}"""), Body(requests[1])));
        Assert.IsTrue(Planned(result).Plan.Steps[1].NeedsProfileId);
    }

    [TestMethod]
    public void Identify_WithSubscribeAndEmailConsent_SubscribesEmailToList()
    {
        var result = Transforms.Run("""
            {"type":"identify","userId":"u-1","traits":{"email":"a@example.com","phone":"+14155552671",
             "properties":{"listId":"XyZ123","subscribe":true}}}
            """);
        var requests = Requests(result, profileId: "01ABC");

        Assert.HasCount(2, requests);
        Assert.AreEqual(KlaviyoEndpoint.SubscribeProfiles, requests[1].Endpoint);
        Assert.AreEqual(KlaviyoApi.SubscribeProfilesPath, requests[1].Path);
        var expected = JsonNode.Parse("""
            {"data":{"type":"profile-subscription-bulk-create-job",
              "attributes":{"profiles":{"data":[{"type":"profile","id":"01ABC","attributes":{
                 "email":"a@example.com","phone_number":"+14155552671",
                 "subscriptions":{"email":{"marketing":{"consent":"SUBSCRIBED"}}}}}]}},
              "relationships":{"list":{"data":{"type":"list","id":"XyZ123"}}}}}
            """);
        Assert.IsTrue(JsonNode.DeepEquals(expected, Body(requests[1])), Body(requests[1]).ToJsonString());
    }

    [TestMethod]
    [DataRow("""{"listId":"L1","subscribe":true,"consent":["email","sms"]}""", true, true, DisplayName = "consent array with both channels")]
    [DataRow("""{"listId":"L1","subscribe":true,"consent":"sms"}""", false, true, DisplayName = "consent string overrides setting")]
    [DataRow("""{"listId":"L1","subscribe":true,"smsConsent":true}""", true, true, DisplayName = "smsConsent adds sms to setting email")]
    [DataRow("""{"listId":"L1","subscribe":"true","consent":"email,sms"}""", true, true, DisplayName = "string flag and comma list")]
    public void Identify_WithConsentOverrides_SubscribesResolvedChannels(string control, bool email, bool sms)
    {
        var json = """{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","phone":"+14155552671","properties":""" + control + "}}";
        var requests = Requests(Transforms.Run(json));
        var subscriptions = Attributes(requests[1])["profiles"]!["data"]![0]!["attributes"]!["subscriptions"]!.AsObject();

        Assert.AreEqual(email, subscriptions.ContainsKey("email"));
        Assert.AreEqual(sms, subscriptions.ContainsKey("sms"));
    }

    [TestMethod]
    public void Identify_WithSmsConsentSettingAndPhone_SubscribesSms()
    {
        var json = """{"type":"identify","userId":"u-1","traits":{"phone":"0044 20 7946 0958","properties":{"subscribe":true}}}""";
        var requests = Requests(Transforms.Run(json, o => { o.ListId = "LIST1"; o.SmsConsent = true; }));
        var profile = Attributes(requests[1])["profiles"]!["data"]![0]!["attributes"]!;

        Assert.AreEqual("+442079460958", (string?)profile["phone_number"]);
        Assert.AreEqual("SUBSCRIBED", (string?)profile["subscriptions"]!["sms"]!["marketing"]!["consent"]);
        Assert.IsNull(profile["subscriptions"]!["email"], "no email, so no email channel");
    }

    [TestMethod]
    public void Identify_WithSubscribeButNoMatchingChannel_AddsToListAndWarns()
    {
        var json = """{"type":"identify","userId":"u-1","traits":{"properties":{"listId":"L1","subscribe":true}}}""";
        var result = Transforms.Run(json);
        var requests = Requests(result);

        Assert.AreEqual(KlaviyoEndpoint.AddProfilesToList, requests[1].Endpoint);
        Assert.HasCount(1, Planned(result).Plan.Warnings);
    }

    [TestMethod]
    [DataRow("false")]
    [DataRow("\"false\"")]
    public void Identify_WithSubscribeFalseAndAddToListSetting_AddsToListWithoutConsent(string flag)
    {
        var json = """{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","properties":{"listId":"L1","subscribe":""" + flag + "}}}";
        var requests = Requests(Transforms.Run(json, o => o.OnSubscribeFalse = "addToList"));

        Assert.AreEqual(KlaviyoEndpoint.AddProfilesToList, requests[1].Endpoint);
        Assert.AreEqual("/api/lists/L1/relationships/profiles", requests[1].Path);
    }

    [TestMethod]
    public void Identify_WithControlProperties_ConsumesControlsAndMergesOtherKeys()
    {
        var json = """{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","plan":"pro","properties":{"listId":"L1","subscribe":false,"consent":"email","smsConsent":true,"removeFromList":false,"consentedAt":"2020-01-01T00:00:00Z","vip":true,"plan":"ignored"}}}""";
        var properties = Attributes(Requests(Transforms.Run(json))[0])["properties"]!.AsObject();

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"plan":"pro","vip":true}"""), properties), properties.ToJsonString());
    }

    [TestMethod]
    public void Identify_WithControlsOnlyInContextTraitsProperties_SubscribesToList()
    {
        var json = """
            {"type":"identify","userId":"u-1","traits":{"email":"a@example.com"},
             "context":{"traits":{"properties":{"listId":"CtxList1","subscribe":true,"consent":["email"]}}}}
            """;
        var requests = Requests(Transforms.Run(json), profileId: "01ABC");

        Assert.HasCount(2, requests);
        Assert.AreEqual(KlaviyoEndpoint.SubscribeProfiles, requests[1].Endpoint);
        Assert.AreEqual("CtxList1", (string?)Body(requests[1])["data"]!["relationships"]!["list"]!["data"]!["id"]);
        var profile = Attributes(requests[1])["profiles"]!["data"]![0]!["attributes"]!;
        Assert.AreEqual("a@example.com", (string?)profile["email"]);
        Assert.AreEqual("SUBSCRIBED", (string?)profile["subscriptions"]!["email"]!["marketing"]!["consent"]);
    }

    [TestMethod]
    public void Identify_WithControlsInBothLayers_TraitsPropertiesWinKeyByKey()
    {
        // listId from traits.properties, subscribe and consent only in context.traits.properties.
        var json = """
            {"type":"identify","userId":"u-1","traits":{"email":"a@example.com","phone":"+14155552671","properties":{"listId":"Upper1","consent":"sms"}},
             "context":{"traits":{"properties":{"listId":"Lower1","subscribe":true,"consent":"email"}}}}
            """;
        var requests = Requests(Transforms.Run(json));

        Assert.AreEqual(KlaviyoEndpoint.SubscribeProfiles, requests[1].Endpoint);
        Assert.AreEqual("Upper1", (string?)Body(requests[1])["data"]!["relationships"]!["list"]!["data"]!["id"]);
        var subscriptions = Attributes(requests[1])["profiles"]!["data"]![0]!["attributes"]!["subscriptions"]!.AsObject();
        Assert.IsTrue(subscriptions.ContainsKey("sms"), "traits.properties.consent wins");
        Assert.IsFalse(subscriptions.ContainsKey("email"), "context.traits.properties.consent is shadowed");
    }

    [TestMethod]
    public void Identify_WithContextTraitsProperties_MergesOtherKeysAndSendsNoPropertiesObject()
    {
        var json = """
            {"type":"identify","userId":"u-1","traits":{"email":"a@example.com","plan":"pro","properties":{"vip":true,"tier":"gold"}},
             "context":{"traits":{"properties":{"listId":"L1","subscribe":false,"consent":["email","sms"],"smsConsent":true,"tier":"silver","region_code":"eu","plan":"ignored"}}}}
            """;
        var properties = Attributes(Requests(Transforms.Run(json))[0])["properties"]!.AsObject();

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"plan":"pro","vip":true,"tier":"gold","region_code":"eu"}"""), properties), properties.ToJsonString());
    }

    [TestMethod]
    public void Identify_WithOnlyContextTraitsPropertiesKeys_DoesNotLeakThemAsPropertiesKey()
    {
        var json = """{"type":"identify","userId":"u-1","context":{"traits":{"properties":{"subscribe":false}}}}""";
        var properties = Attributes(Single(Transforms.Run(json), KlaviyoEndpoint.ProfileImport))["properties"]!.AsObject();

        Assert.IsEmpty(properties, properties.ToJsonString());
    }

    [TestMethod]
    public void Identify_WithBadControlInContextTraitsProperties_IsInvalidNamingThatField()
    {
        var invalid = Invalid(Transforms.Run("""{"type":"identify","userId":"u-1","context":{"traits":{"properties":{"listId":"L1","subscribe":"yes"}}}}"""));

        Assert.AreEqual("context.traits.properties.subscribe", invalid.Field);
    }

    [TestMethod]
    public void Identify_WithContextTraitsPropertiesNotAnObject_IsInvalid()
    {
        var invalid = Invalid(Transforms.Run("""{"type":"identify","userId":"u-1","context":{"traits":{"properties":"x"}}}"""));

        Assert.AreEqual("context.traits.properties", invalid.Field);
    }

    [TestMethod]
    public void Identify_WithPropertiesListId_UsesItOverSetting()
    {
        var json = """{"type":"identify","userId":"u-1","properties":{"listId":"FROMPROPS"}}""";
        var requests = Requests(Transforms.Run(json, o => o.ListId = "SETTING"));

        Assert.AreEqual("/api/lists/FROMPROPS/relationships/profiles", requests[1].Path);
    }
}
