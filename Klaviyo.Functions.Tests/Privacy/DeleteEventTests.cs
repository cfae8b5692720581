using System.Text;
using Klaviyo.Functions.Calls;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Privacy;

/// <summary>Spec 5.7: what a <c>type: "delete"</c> event becomes, what the ingest refuses, and the deletion job bodies
/// against Klaviyo's OpenAPI schema.</summary>
[TestClass]
public sealed class DeleteEventTests
{
    private static DeletionParts Parts(string json)
    {
        var planned = Assert.IsInstanceOfType<TransformResult.Planned>(Transforms.Run(json));
        return Assert.IsInstanceOfType<DeletionParts>(planned.Parts);
    }

    [TestMethod]
    public void Delete_WithEmailOnly_IsADeletionByEmail()
    {
        var parts = Parts("""{"type":"delete","messageId":"d-1","traits":{"email":"jane@example.com"}}""");

        Assert.AreEqual(new DeletionParts("jane@example.com", null, null, null, AdminRequest: false), parts);
    }

    [TestMethod]
    public void Delete_WithPhoneOnlyInContextTraits_IsADeletionByTheE164Phone()
    {
        var parts = Parts("""{"type":"delete","messageId":"d-2","context":{"traits":{"phone":"+1 (500) 555-0006"}}}""");

        Assert.AreEqual(new DeletionParts(null, "+15005550006", null, null, AdminRequest: false), parts);
    }

    [TestMethod]
    public void Delete_WithUserIdOnly_IsADeletionToLookUp()
    {
        var parts = Parts("""{"type":"DELETE","messageId":"d-3","userId":"u-42","anonymousId":"a-1"}""");

        Assert.AreEqual(new DeletionParts(null, null, "u-42", null, AdminRequest: false), parts);
    }

    [TestMethod]
    public void Delete_WithAKlaviyoProfileIdInContextExternalId_IsADeletionByProfileId()
    {
        var parts = Parts("""{"type":"delete","messageId":"d-4","context":{"externalId":[{"type":"klaviyo-profileId","id":"01HPROFILE"}]}}""");

        Assert.AreEqual(new DeletionParts(null, null, null, "01HPROFILE", AdminRequest: false), parts);
    }

    [TestMethod]
    [DataRow("""{"type":"delete","messageId":"d-5"}""", DisplayName = "no identifier at all")]
    [DataRow("""{"type":"delete","messageId":"d-6","anonymousId":"a-1"}""", DisplayName = "anonymousId only: Klaviyo cannot delete by it")]
    [DataRow("""{"type":"delete","messageId":"d-7","traits":{"email":""}}""", DisplayName = "an empty email")]
    public void Delete_WithoutAnyIdentifier_IsInvalidNamingUserId(string json)
    {
        var invalid = Assert.IsInstanceOfType<TransformResult.Invalid>(Transforms.Run(json));

        Assert.AreEqual("userId", invalid.Field);
        Assert.AreEqual(DeleteMapping.NoIdentifierRule, invalid.Rule);
    }

    [TestMethod]
    public void Delete_WithAPhoneThatIsNotE164_IsInvalidNamingThePhoneFieldWithoutItsValue()
    {
        var invalid = Assert.IsInstanceOfType<TransformResult.Invalid>(Transforms.Run("""{"type":"delete","messageId":"d-8","userId":"u-1","traits":{"phone":"12"}}"""));

        Assert.AreEqual("traits.phone", invalid.Field);
        Assert.Contains("E.164", invalid.Rule);
    }

    [TestMethod]
    public void DeletionJob_EachIdentifier_ValidatesAgainstTheOpenApiSchemaWithExactlyOneIdentifier()
    {
        foreach (var (kind, value, expected) in new[]
        {
            (DeletionIdentifier.Email, "jane@example.com", """{"data":{"type":"data-privacy-deletion-job","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"jane@example.com"}}}}}}"""),
            (DeletionIdentifier.Phone, "+15005550006", """{"data":{"type":"data-privacy-deletion-job","attributes":{"profile":{"data":{"type":"profile","attributes":{"phone_number":"+15005550006"}}}}}}"""),
            (DeletionIdentifier.ProfileId, "01HPROFILE", """{"data":{"type":"data-privacy-deletion-job","attributes":{"profile":{"data":{"type":"profile","id":"01HPROFILE","attributes":{}}}}}}"""),
        })
        {
            var request = KlaviyoCalls.DeletionJob(kind, value);

            KlaviyoSchemas.AssertValid(request);
            Assert.AreEqual(KlaviyoApi.RequestDeletionPath, request.Path);
            Assert.AreEqual(expected, Encoding.UTF8.GetString(request.Body.Span), kind.ToString());
        }
    }

    [TestMethod]
    public void DeletionJob_WithoutTheProfilesType_IsCaughtByTheSchema()
    {
        // Guards the oracle: the schema really is the deletion job's.
        var errors = KlaviyoSchemas.Validate(KlaviyoEndpoint.RequestDeletion, """{"data":{"type":"data-privacy-deletion-job","attributes":{"profile":{"data":{"id":"x"}}}}}"""u8.ToArray());

        Assert.IsNotEmpty(errors);
    }

    [TestMethod]
    public void ProfilesByExternalId_QuotesAndEscapesTheUserIdInTheFilter()
    {
        var request = KlaviyoCalls.ProfilesByExternalId("u \"42\"");

        Assert.AreEqual(HttpMethod.Get, request.Method);
        var query = System.Web.HttpUtility.ParseQueryString(new Uri("https://a.klaviyo.com" + request.Path).Query);
        Assert.AreEqual("equals(external_id,\"u \\\"42\\\"\")", query["filter"]);
        Assert.AreEqual("100", query["page[size]"]);
    }
}

/// <summary>The ingest's side of spec 5.7: delete events are accepted (whatever <c>Privacy__DeleteEvents</c> says: the
/// relay decides), and refused only for what could never be delivered.</summary>
[TestClass]
public sealed class DeleteIngestTests
{
    [TestMethod]
    [DataRow("""{"type":"delete","messageId":"i-1","traits":{"email":"jane@example.com"}}""", DisplayName = "email only")]
    [DataRow("""{"type":"delete","messageId":"i-1","context":{"traits":{"phone":"+15005550006"}}}""", DisplayName = "phone only")]
    [DataRow("""{"type":"delete","messageId":"i-1","userId":"u-42"}""", DisplayName = "userId only")]
    public async Task Ingest_DeleteWithAnIdentifier_Is202AndQueuedAsDelete(string json)
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", json);

        Assert.AreEqual(202, response.Status);
        var queued = host.Queue.Sent.Single();
        Assert.AreEqual("delete", queued.Subject);
        Assert.AreEqual("i-1", queued.MessageId);
    }

    [TestMethod]
    public async Task Ingest_DeleteOnItsTypedRoute_Is202()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/v1/delete", """{"userId":"u-42"}""");

        Assert.AreEqual(202, response.Status);
        Assert.AreEqual("delete", IngestHost.BodyOf(host.Queue.Sent.Single()).GetProperty("type").GetString());
    }

    [TestMethod]
    public async Task Ingest_DeleteWithoutAnyIdentifier_Is400NamingUserIdAndQueuesNothing()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """{"type":"delete","messageId":"i-2","anonymousId":"a-1"}""");

        Assert.AreEqual(400, response.Status);
        Assert.AreEqual("application/problem+json", response.ContentType);
        var error = response.Errors.Single();
        Assert.AreEqual("userId", error.GetProperty("field").GetString());
        Assert.AreEqual(DeleteMapping.NoIdentifierRule, error.GetProperty("message").GetString());
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Ingest_DeleteCarryingTheAdminRouteMarker_Is400SoSendersCannotWalkAroundDeleteEventsOff()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """{"type":"delete","messageId":"i-3","userId":"u-42","adminRequest":true}""");

        Assert.AreEqual(400, response.Status);
        Assert.AreEqual(DeleteMapping.AdminRequestField, response.Errors.Single().GetProperty("field").GetString());
        Assert.IsEmpty(host.Queue.Sent);
    }
}
