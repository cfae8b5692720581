using System.Text;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Klaviyo;

/// <summary>The schema oracle itself: hand-written bodies from Klaviyo's docs pass, and broken ones are caught.</summary>
[TestClass]
public sealed class OpenApiBodyTests
{
    private const string ValidEvent = """
        { "data": { "type": "event", "attributes": {
            "metric":  { "data": { "type": "metric", "attributes": { "name": "Order Completed" } } },
            "profile": { "data": { "type": "profile", "attributes": {
                "email": "jane@example.com", "phone_number": "+15005550006", "external_id": "u-42",
                "anonymous_id": "anon-9", "first_name": "Jane",
                "location": { "city": "Boston", "country": "US", "ip": "203.0.113.9" },
                "properties": { "plan": "pro" } } } },
            "properties": { "order_id": "o-1", "items": [ { "sku": "A1" } ] },
            "time": "2026-11-20T14:03:11Z",
            "value": 42.5, "value_currency": "USD",
            "unique_id": "msg-1"
        } } }
        """;

    private const string ValidProfile = """
        { "data": { "type": "profile",
          "attributes": { "email": "jane@example.com", "phone_number": "+15005550006", "external_id": "u-42",
                          "first_name": "Jane", "last_name": null,
                          "location": { "zip": "02118", "country": "US" },
                          "properties": { "plan": "pro" } },
          "meta": { "patch_properties": { "append": { "skus": "A1" } } } } }
        """;

    private const string ValidSubscribe = """
        { "data": { "type": "profile-subscription-bulk-create-job",
          "attributes": {
            "profiles": { "data": [ { "type": "profile", "id": "01HPROFILEID0000000000000", "attributes": {
                "email": "jane@example.com", "phone_number": "+15005550006",
                "subscriptions": {
                  "email": { "marketing": { "consent": "SUBSCRIBED" } },
                  "sms":   { "marketing": { "consent": "SUBSCRIBED" } } } } } ] } },
          "relationships": { "list": { "data": { "type": "list", "id": "Y6nRLr" } } } } }
        """;

    private const string ValidListAdd = """{ "data": [ { "type": "profile", "id": "01GDDKASAP8TKDDA2GRZDSVP4H" } ] }""";

    private static ReadOnlyMemory<byte> Utf8(string json) => Encoding.UTF8.GetBytes(json);

    [TestMethod]
    [DataRow(KlaviyoEndpoint.CreateEvent, ValidEvent, DisplayName = "Validate_DocumentedBody_HasNoErrors (event)")]
    [DataRow(KlaviyoEndpoint.ProfileImport, ValidProfile, DisplayName = "Validate_DocumentedBody_HasNoErrors (profile-import)")]
    [DataRow(KlaviyoEndpoint.SubscribeProfiles, ValidSubscribe, DisplayName = "Validate_DocumentedBody_HasNoErrors (subscription job)")]
    [DataRow(KlaviyoEndpoint.AddProfilesToList, ValidListAdd, DisplayName = "Validate_DocumentedBody_HasNoErrors (add to list)")]
    public void Validate_DocumentedBody_HasNoErrors(object endpointCase, string body)
    {
        var endpoint = (KlaviyoEndpoint)endpointCase;
        var errors = KlaviyoSchemas.Validate(endpoint, Utf8(body));

        Assert.IsEmpty(errors, string.Join("\n", errors));
    }

    [TestMethod]
    public void AssertValid_DocumentedEventRequest_Passes()
    {
        KlaviyoSchemas.AssertValid(new KlaviyoRequest(KlaviyoEndpoint.CreateEvent, KlaviyoApi.CreateEventPath, Utf8(ValidEvent)));
    }

    [TestMethod]
    public void Validate_NullTimeAndClearedFields_AreAcceptedBecauseNullableIsTranslated()
    {
        var body = ValidEvent.Replace("\"time\": \"2026-11-20T14:03:11Z\"", "\"time\": null", StringComparison.Ordinal)
            .Replace("\"first_name\": \"Jane\"", "\"first_name\": null", StringComparison.Ordinal);

        var errors = KlaviyoSchemas.Validate(KlaviyoEndpoint.CreateEvent, Utf8(body));

        Assert.IsEmpty(errors, string.Join("\n", errors));
    }

    [TestMethod]
    public void Validate_EventWithoutMetric_IsRejected()
    {
        var body = ValidEvent.Replace(
            "\"metric\":  { \"data\": { \"type\": \"metric\", \"attributes\": { \"name\": \"Order Completed\" } } },", "", StringComparison.Ordinal);
        Assert.AreNotEqual(ValidEvent, body);

        var errors = KlaviyoSchemas.Validate(KlaviyoEndpoint.CreateEvent, Utf8(body));

        Assert.IsNotEmpty(errors);
        Assert.Contains(e => e.Contains("metric", StringComparison.Ordinal), errors, string.Join("\n", errors));
    }

    [TestMethod]
    public void Validate_EventWithoutProperties_IsRejected()
    {
        var body = ValidEvent.Replace(
            "\"properties\": { \"order_id\": \"o-1\", \"items\": [ { \"sku\": \"A1\" } ] },", "", StringComparison.Ordinal);
        Assert.AreNotEqual(ValidEvent, body);

        Assert.IsNotEmpty(KlaviyoSchemas.Validate(KlaviyoEndpoint.CreateEvent, Utf8(body)));
    }

    [TestMethod]
    [DataRow(KlaviyoEndpoint.CreateEvent, ValidEvent, "\"type\": \"event\"", "\"type\": \"events\"", DisplayName = "Validate_WrongTypeEnum_IsRejected (event: type events)")]
    [DataRow(KlaviyoEndpoint.CreateEvent, ValidEvent, "\"type\": \"metric\"", "\"type\": \"metrics\"", DisplayName = "Validate_WrongTypeEnum_IsRejected (event: metric type metrics)")]
    [DataRow(KlaviyoEndpoint.ProfileImport, ValidProfile, "\"type\": \"profile\"", "\"type\": \"Profile\"", DisplayName = "Validate_WrongTypeEnum_IsRejected (profile-import: type Profile)")]
    [DataRow(KlaviyoEndpoint.SubscribeProfiles, ValidSubscribe, "\"type\": \"list\"", "\"type\": \"lists\"", DisplayName = "Validate_WrongTypeEnum_IsRejected (subscription job: list type lists)")]
    [DataRow(KlaviyoEndpoint.AddProfilesToList, ValidListAdd, "\"type\": \"profile\"", "\"type\": \"list\"", DisplayName = "Validate_WrongTypeEnum_IsRejected (add to list: member type list)")]
    public void Validate_WrongTypeEnum_IsRejected(object endpointCase, string valid, string from, string to)
    {
        var endpoint = (KlaviyoEndpoint)endpointCase;
        var body = valid.Replace(from, to, StringComparison.Ordinal);
        Assert.AreNotEqual(valid, body);

        Assert.IsNotEmpty(KlaviyoSchemas.Validate(endpoint, Utf8(body)));
    }

    [TestMethod]
    public void Validate_LowerCaseSubscribedConsent_IsRejected()
    {
        var body = ValidSubscribe.Replace("\"SUBSCRIBED\"", "\"subscribed\"", StringComparison.Ordinal);

        var errors = KlaviyoSchemas.Validate(KlaviyoEndpoint.SubscribeProfiles, Utf8(body));

        Assert.IsNotEmpty(errors);
        Assert.Contains(e => e.Contains("/subscriptions/email/marketing/consent", StringComparison.Ordinal), errors, string.Join("\n", errors));
    }

    [TestMethod]
    [DataRow("yesterday")]
    [DataRow("2026-11-20")]
    [DataRow("1732096991")]
    [DataRow("20/11/2026")]
    public void Validate_BadTime_IsRejectedBecauseFormatValidationIsRequired(string time)
    {
        var body = ValidEvent.Replace("2026-11-20T14:03:11Z", time, StringComparison.Ordinal);

        var errors = KlaviyoSchemas.Validate(KlaviyoEndpoint.CreateEvent, Utf8(body));

        Assert.IsNotEmpty(errors);
        Assert.Contains(e => e.Contains("/data/attributes/time", StringComparison.Ordinal), errors, string.Join("\n", errors));
    }

    [TestMethod]
    public void Validate_ValueAsString_IsRejected()
    {
        var body = ValidEvent.Replace("\"value\": 42.5", "\"value\": \"42.5\"", StringComparison.Ordinal);

        Assert.IsNotEmpty(KlaviyoSchemas.Validate(KlaviyoEndpoint.CreateEvent, Utf8(body)));
    }

    [TestMethod]
    public void Validate_SubscriptionProfileWithoutSubscriptions_IsRejected()
    {
        const string body = """
            { "data": { "type": "profile-subscription-bulk-create-job",
              "attributes": { "profiles": { "data": [ { "type": "profile", "attributes": { "email": "jane@example.com" } } ] } },
              "relationships": { "list": { "data": { "type": "list", "id": "Y6nRLr" } } } } }
            """;

        Assert.IsNotEmpty(KlaviyoSchemas.Validate(KlaviyoEndpoint.SubscribeProfiles, Utf8(body)));
    }

    [TestMethod]
    public void Validate_NotJson_IsReportedAsAnError()
    {
        Assert.IsNotEmpty(KlaviyoSchemas.Validate(KlaviyoEndpoint.CreateEvent, Utf8("{\"data\":")));
    }

    [TestMethod]
    public void AssertValid_InvalidBody_FailsWithTheInstanceLocation()
    {
        var body = ValidSubscribe.Replace("\"SUBSCRIBED\"", "\"subscribed\"", StringComparison.Ordinal);
        var request = new KlaviyoRequest(KlaviyoEndpoint.SubscribeProfiles, KlaviyoApi.SubscribeProfilesPath, Utf8(body));

        var failure = Assert.ThrowsExactly<AssertFailedException>(() => KlaviyoSchemas.AssertValid(request));

        Assert.Contains("SubscriptionCreateJobCreateQuery", failure.Message);
        Assert.Contains("/subscriptions/email/marketing/consent", failure.Message);
    }

    [TestMethod]
    [DataRow(KlaviyoSchemas.EventsBulkCreateJob, """
        { "data": { "type": "event-bulk-create-job", "attributes": { "events-bulk-create": { "data": [
          { "type": "event-bulk-create", "attributes": {
              "profile": { "data": { "type": "profile", "attributes": { "email": "jane@example.com" } } },
              "events":  { "data": [
                { "type": "event", "attributes": {
                    "metric": { "data": { "type": "metric", "attributes": { "name": "Viewed Product" } } },
                    "properties": { "sku": "A1" }, "time": "2026-11-20T14:03:11Z", "unique_id": "m-1" } } ] } } }
        ] } } } }
        """, DisplayName = "Validate_DocumentedBulkBody_HasNoErrors (events bulk create job)")]
    [DataRow(KlaviyoSchemas.ProfileImportJobCreateQuery, """
        { "data": { "type": "profile-bulk-import-job",
          "attributes": { "profiles": { "data": [
             { "type": "profile", "attributes": { "email": "a@example.com", "properties": { "plan": "pro" } } },
             { "type": "profile", "attributes": { "phone_number": "+15005550006", "external_id": "u-7" } } ] } },
          "relationships": { "lists": { "data": [ { "type": "list", "id": "Y6nRLr" } ] } } } }
        """, DisplayName = "Validate_DocumentedBulkBody_HasNoErrors (profile bulk import job)")]
    public void Validate_DocumentedBulkBody_HasNoErrors(string schema, string body)
    {
        var errors = KlaviyoSchemas.Validate(schema, Utf8(body));

        Assert.IsEmpty(errors, string.Join("\n", errors));
    }

    [TestMethod]
    public void Validate_UnknownSchemaName_Throws()
    {
        Assert.ThrowsExactly<ArgumentException>(() => KlaviyoSchemas.Validate("NoSuchSchema", Utf8("{}")));
    }
}
