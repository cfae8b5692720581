using System.Text;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Events;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

/// <summary>Consent (spec version 4, section 5): unsubscribe on <c>subscribe: false</c>, <c>removeFromList</c>, the
/// consent time, the SMS age gate and the custom source; every body checked against its OpenAPI schema.</summary>
[TestClass]
public sealed class ConsentMappingTests
{
    private const string Email = "a@example.com";
    private const string Phone = "+14155552671";

    private static string Identify(string traits, string control) =>
        """{"type":"identify","userId":"u-1","timestamp":"2026-11-20T10:00:00Z","traits":{""" + traits + (traits.Length > 0 ? "," : "") + "\"properties\":{" + control + "}}}";

    private static string Channels(JsonNode profile) =>
        string.Join(",", profile["attributes"]!["subscriptions"]!.AsObject().Select(c => $"{c.Key}={(string?)c.Value!["marketing"]!["consent"]}"));

    private static IReadOnlyList<KlaviyoRequest> Valid(IReadOnlyList<KlaviyoRequest> requests)
    {
        foreach (var request in requests)
        {
            KlaviyoSchemas.AssertValid(request);
        }
        return requests;
    }

    [TestMethod]
    [DataRow("false")]
    [DataRow("\"false\"")]
    [DataRow("\"False\"")]
    [DataRow("\"FALSE\"")]
    public void SubscribeFalse_Unsubscribes_TheEmailFromTheListWithoutAProfileId(string flag)
    {
        var result = Transforms.Run(Identify($"\"email\":\"{Email}\"", $"\"listId\":\"L1\",\"subscribe\":{flag}"));

        var plan = Planned(result).Plan;
        Assert.IsFalse(plan.Steps[1].NeedsProfileId, "Klaviyo unsubscribes by email and phone");
        var requests = Valid(Requests(result));
        Assert.AreEqual(KlaviyoEndpoint.UnsubscribeProfiles, requests[1].Endpoint);
        Assert.AreEqual("/api/profile-subscription-bulk-delete-jobs", requests[1].Path);
        var job = Body(requests[1])["data"]!;
        Assert.AreEqual("L1", (string?)job["relationships"]!["list"]!["data"]!["id"]);
        var profile = job["attributes"]!["profiles"]!["data"]![0]!;
        Assert.AreEqual(Email, (string?)profile["attributes"]!["email"]);
        Assert.AreEqual("email=UNSUBSCRIBED", Channels(profile));
    }

    [TestMethod]
    public void SubscribeAbsent_AddsToTheList()
    {
        var requests = Valid(Requests(Transforms.Run(Identify($"\"email\":\"{Email}\"", "\"listId\":\"L1\""))));

        Assert.AreEqual(KlaviyoEndpoint.AddProfilesToList, requests[1].Endpoint);
    }

    [TestMethod]
    [DataRow("0")]
    [DataRow("\"no\"")]
    [DataRow("[]")]
    public void SubscribeNotABoolean_IsAPermanentErrorNamingTheField(string flag)
    {
        var invalid = Invalid(Transforms.Run(Identify($"\"email\":\"{Email}\"", $"\"listId\":\"L1\",\"subscribe\":{flag}")));

        Assert.AreEqual("traits.properties.subscribe", invalid.Field);
        Assert.AreEqual("must be true or false", invalid.Rule);
    }

    [TestMethod]
    [DataRow("\"email\":\"a@example.com\"", "email", "email=UNSUBSCRIBED", DisplayName = "email only")]
    [DataRow("\"phone\":\"+14155552671\"", "email", "sms=UNSUBSCRIBED", DisplayName = "phone only: no consent channel has an identifier, so every channel that has one")]
    [DataRow("\"email\":\"a@example.com\"", "sms", "email=UNSUBSCRIBED", DisplayName = "consent sms with an email only: the opt-out is never dropped")]
    [DataRow("\"email\":\"a@example.com\",\"phone\":\"+14155552671\"", "email,sms", "email=UNSUBSCRIBED,sms=UNSUBSCRIBED", DisplayName = "both")]
    [DataRow("\"email\":\"a@example.com\",\"phone\":\"+14155552671\"", "sms", "sms=UNSUBSCRIBED", DisplayName = "consent sms with both: sms only")]
    public void Unsubscribe_Channels_AreTheConsentChannelsWithAnIdentifier(string traits, string consent, string channels)
    {
        var requests = Valid(Requests(Transforms.Run(Identify(traits, "\"listId\":\"L1\",\"subscribe\":false"), o => o.Consent = consent)));

        Assert.AreEqual(channels, Channels(Body(requests[1])["data"]!["attributes"]!["profiles"]!["data"]![0]!));
    }

    [TestMethod]
    public void Unsubscribe_WithoutEmailOrPhone_IsRefusedAtTheIngestNamingTheField()
    {
        using var document = System.Text.Json.JsonDocument.Parse(Identify("", "\"listId\":\"L1\",\"subscribe\":false"));

        var refused = Transforms.Transformer().CheckBeforeIngest(document.RootElement, EventType.Identify);

        var invalid = Assert.IsInstanceOfType<TransformResult.Invalid>(refused);
        Assert.AreEqual("traits.properties.subscribe", invalid.Field);
        Assert.AreEqual("unsubscribe needs an email or an E.164 phone", invalid.Rule);
    }

    [TestMethod]
    public void Group_SubscribeFalse_UnsubscribesFromTheGroupsList()
    {
        var json = """{"type":"group","userId":"u-1","groupId":"G1","traits":{"subscribe":"false"},"context":{"traits":{"email":"a@example.com"}}}""";

        var requests = Valid(Requests(Transforms.Run(json)));

        Assert.AreEqual(KlaviyoEndpoint.UnsubscribeProfiles, requests[1].Endpoint);
        Assert.AreEqual("G1", (string?)Body(requests[1])["data"]!["relationships"]!["list"]!["data"]!["id"]);
    }

    [TestMethod]
    public void RemoveFromList_WithAList_DeletesTheProfileIdFromIt()
    {
        var requests = Valid(Requests(Transforms.Run(Identify($"\"email\":\"{Email}\"", "\"listId\":\"L1\",\"removeFromList\":\"true\"")), profileId: "01P"));

        Assert.AreEqual(KlaviyoEndpoint.RemoveProfilesFromList, requests[1].Endpoint);
        Assert.AreEqual(HttpMethod.Delete, requests[1].Method);
        Assert.AreEqual("/api/lists/L1/relationships/profiles", requests[1].Path);
        Assert.AreEqual("""{"data":[{"type":"profile","id":"01P"}]}""", Encoding.UTF8.GetString(requests[1].Body.Span));
    }

    [TestMethod]
    public void RemoveFromList_WithoutAList_ImportsTheProfileOnlyAndWarns()
    {
        var plan = Planned(Transforms.Run("""{"type":"identify","userId":"u-1","traits":{"email":"a@example.com","properties":{"removeFromList":true}}}""")).Plan;

        Assert.HasCount(1, plan.Steps);
        Assert.Contains("removeFromList", plan.Warnings.Single());
    }

    [TestMethod]
    public void RemoveFromList_WithSubscribeTrue_ContradictsNamingTheField()
    {
        var invalid = Invalid(Transforms.Run(Identify($"\"email\":\"{Email}\"", "\"listId\":\"L1\",\"subscribe\":true,\"removeFromList\":true")));

        Assert.AreEqual("traits.properties.removeFromList", invalid.Field);
        Assert.AreEqual("removeFromList and subscribe contradict each other", invalid.Rule);
    }

    [TestMethod]
    public void RemoveFromList_WithSubscribeFalse_UnsubscribesAndWarnsThatTheMembershipStays()
    {
        var result = Transforms.Run(Identify($"\"email\":\"{Email}\"", "\"listId\":\"L1\",\"subscribe\":false,\"removeFromList\":true"));

        Assert.AreEqual(KlaviyoEndpoint.UnsubscribeProfiles, Requests(result)[1].Endpoint);
        Assert.Contains("stays on the list", Planned(result).Plan.Warnings.Single());
    }

    [TestMethod]
    public void ConsentedAt_InThePast_MakesAHistoricalImportWithTheTimeOnEachChannel()
    {
        var requests = Valid(Requests(Transforms.Run(
            Identify($"\"email\":\"{Email}\",\"phone\":\"{Phone}\"", "\"listId\":\"L1\",\"subscribe\":true,\"consent\":[\"email\",\"sms\"],\"consentedAt\":\"2025-03-01T10:00:00+01:00\""))));

        var job = Body(requests[1])["data"]!["attributes"]!;
        Assert.IsTrue((bool?)job["historical_import"]);
        var subscriptions = job["profiles"]!["data"]![0]!["attributes"]!["subscriptions"]!;
        Assert.AreEqual("2025-03-01T09:00:00Z", (string?)subscriptions["email"]!["marketing"]!["consented_at"]);
        Assert.AreEqual("2025-03-01T09:00:00Z", (string?)subscriptions["sms"]!["marketing"]!["consented_at"]);
    }

    [TestMethod]
    [DataRow("\"2999-01-01T00:00:00Z\"", "must not be in the future (a consent time is when consent was given)")]
    [DataRow("\"yesterday\"", "must be an ISO-8601 date-time")]
    [DataRow("42", "must be an ISO-8601 date-time")]
    [DataRow("\"1980-01-01T00:00:00Z\"", "must not be before 1990-01-01")]
    public void ConsentedAt_FutureOrGarbage_IsAPermanentErrorNamingTheField(string value, string rule)
    {
        var invalid = Invalid(Transforms.Run(Identify($"\"email\":\"{Email}\"", $"\"listId\":\"L1\",\"subscribe\":true,\"consentedAt\":{value}")));

        Assert.AreEqual("traits.properties.consentedAt", invalid.Field);
        Assert.AreEqual(rule, invalid.Rule);
    }

    [TestMethod]
    public void Subscription_WithoutConsentedAt_IsNoHistoricalImport()
    {
        var requests = Valid(Requests(Transforms.Run(Identify($"\"email\":\"{Email}\"", "\"listId\":\"L1\",\"subscribe\":true"))));

        var job = Body(requests[1])["data"]!["attributes"]!;
        Assert.IsNull(job["historical_import"]);
        Assert.IsNull(job["profiles"]!["data"]![0]!["attributes"]!["subscriptions"]!["email"]!["marketing"]!["consented_at"]);
    }

    [TestMethod]
    public void Birthday_WithSmsSubscribed_IsSentAsTheAgeGateDate()
    {
        var requests = Valid(Requests(Transforms.Run(Identify($"\"phone\":\"{Phone}\",\"birthday\":\"1990-05-17\"", "\"listId\":\"L1\",\"subscribe\":true,\"consent\":\"sms\""))));

        var profile = Body(requests[1])["data"]!["attributes"]!["profiles"]!["data"]![0]!["attributes"]!;
        Assert.AreEqual("1990-05-17", (string?)profile["age_gated_date_of_birth"]);
        Assert.AreEqual("1990-05-17", (string?)Body(requests[0])["data"]!["attributes"]!["properties"]!["birthday"], "still a profile property");
    }

    [TestMethod]
    public void Birthday_WithOnlyEmailSubscribed_IsNotSentAsTheAgeGateDate()
    {
        var requests = Requests(Transforms.Run(Identify($"\"email\":\"{Email}\",\"birthday\":\"1990-05-17\"", "\"listId\":\"L1\",\"subscribe\":true")));

        Assert.IsNull(Body(requests[1])["data"]!["attributes"]!["profiles"]!["data"]![0]!["attributes"]!["age_gated_date_of_birth"]);
    }

    [TestMethod]
    public void CustomSource_Setting_IsSentWithTheSubscription()
    {
        var requests = Valid(Requests(Transforms.Run(Identify($"\"email\":\"{Email}\"", "\"listId\":\"L1\",\"subscribe\":true"), o => o.CustomSource = "Relay signup")));

        Assert.AreEqual("Relay signup", (string?)Body(requests[1])["data"]!["attributes"]!["custom_source"]);
    }

    [TestMethod]
    [DataRow("nope")]
    [DataRow("")]
    public void OnSubscribeFalse_UnknownValue_FailsStartUpNamingTheSetting(string value)
    {
        var result = new KlaviyoOptionsValidator().Validate(null, new KlaviyoOptions { PrivateApiKey = "pk_x", OnSubscribeFalse = value });

        Assert.IsTrue(result.Failed);
        Assert.Contains("Klaviyo__OnSubscribeFalse", result.FailureMessage);
    }
}
