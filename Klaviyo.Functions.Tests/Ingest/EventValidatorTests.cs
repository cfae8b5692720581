using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Ingest;

/// <summary>The permanent errors of spec sections 4–5 are refused at the door (400), through the HttpRequest path.</summary>
[TestClass]
public sealed class EventValidatorTests
{
    private static async Task<(IngestResponse Response, IngestHost Host)> PostAsync(string body, KlaviyoOptions? klaviyo = null)
    {
        var host = new IngestHost(klaviyo: klaviyo);
        return (await host.PostAsync("/api/events", body), host);
    }

    private static void AssertSingleError(IngestResponse response, int index, string field, string messageFragment)
    {
        Assert.AreEqual(400, response.Status);
        Assert.AreEqual("application/problem+json", response.ContentType);
        var error = response.Errors.Single();
        Assert.AreEqual(index, error.GetProperty("index").GetInt32());
        Assert.AreEqual(field, error.GetProperty("field").GetString());
        Assert.Contains(messageFragment, error.GetProperty("message").GetString()!);
    }

    [TestMethod]
    public async Task Events_LoneSurrogateEscape_IsNotABug()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """{"type":"track","userId":"u-1","event":"Cut \ud83d","properties":{"note":"\udc00 x"}}""");

        Assert.AreEqual(202, response.Status, response.Body.GetRawText());
        var queued = IngestHost.BodyOf(host.Queue.Sent.Single());
        Assert.AreEqual("Cut \uFFFD", queued.GetProperty("event").GetString());
        Assert.AreEqual("\uFFFD x", queued.GetProperty("properties").GetProperty("note").GetString());
    }

    [TestMethod]
    public async Task Events_ClientReceivedAtAndNumericMessageId_AreReplacedNotChecked()
    {
        var host = new IngestHost();

        var response = await host.PostAsync("/api/events", """{"type":"track","userId":"u-1","event":"Paid","messageId":42,"receivedAt":"not a date"}""");

        Assert.AreEqual(202, response.Status, response.Body.GetRawText());
        var queued = IngestHost.BodyOf(host.Queue.Sent.Single());
        Assert.AreEqual("42", queued.GetProperty("messageId").GetString());
        Assert.AreEqual("2026-11-28T12:30:15.123Z", queued.GetProperty("receivedAt").GetString());
    }

    [TestMethod]
    public async Task Events_BugInTheChecks_Answers500ProblemAndEnqueuesNothing()
    {
        var host = new IngestHost(transformClock: new BrokenClock());

        var response = await host.PostAsync("/api/events", """[{"type":"identify","userId":"u-1"},{"type":"track","userId":"u-1","event":"Paid"}]""");

        Assert.AreEqual(500, response.Status);
        Assert.AreEqual("application/problem+json", response.ContentType);
        Assert.AreEqual(500, response.Body.GetProperty("status").GetInt32());
        Assert.Contains("not a problem with the events", response.Body.GetProperty("detail").GetString()!);
        Assert.DoesNotContain(BrokenClock.Message, response.Body.GetRawText(), "the sender is not shown the relay's internals");
        Assert.IsEmpty(host.Queue.Sent);
        Assert.AreEqual(0, host.Queue.SendCalls);
    }

    [TestMethod]
    [DataRow("""{"type":"track","userId":"u-1"}""", "event", "required", DisplayName = "track without event name")]
    [DataRow("""{"type":"track","userId":"u-1","event":"   "}""", "event", "empty", DisplayName = "track with blank event name")]
    [DataRow("""{"type":"track","userId":"u-1","event":"Paid","properties":{"revenue":"abc"}}""", "properties.revenue", "number", DisplayName = "revenue not a number")]
    [DataRow("""{"type":"track","userId":"u-1","event":"Paid","properties":{"revenue":true}}""", "properties.revenue", "number", DisplayName = "revenue a boolean")]
    [DataRow("""{"type":"track","userId":"u-1","event":"Paid","timestamp":"1985-01-01T00:00:00Z"}""", "timestamp", "1990", DisplayName = "timestamp before 1990")]
    [DataRow("""{"type":"track","userId":"u-1","event":"Paid","timestamp":"yesterday"}""", "timestamp", "ISO-8601", DisplayName = "timestamp not a date")]
    [DataRow("""{"type":"identify","traits":{"firstName":"Ada"}}""", "userId", "no user identifier", DisplayName = "identify without identifier")]
    [DataRow("""{"type":"group","userId":"u-1"}""", "groupId", "required", DisplayName = "group without groupId")]
    [DataRow("""{"type":"screen","userId":"u-1"}""", "name", "required", DisplayName = "screen without name")]
    public async Task Events_PermanentError_Answers400WithTransformFieldAndRule(string json, string field, string fragment)
    {
        var (response, host) = await PostAsync(json);

        AssertSingleError(response, 0, field, fragment);
        Assert.IsEmpty(host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_PermanentErrorInSecondEvent_RefusesWholeRequestWithItsIndexAndMessageId()
    {
        var body = $$"""[{{SampleEvents.Track}}, {"type":"track","messageId":"no-name","userId":"u-1"}]""";

        var (response, host) = await PostAsync(body);

        AssertSingleError(response, 1, "event", "required");
        Assert.AreEqual("no-name", response.Errors.Single().GetProperty("messageId").GetString());
        Assert.IsEmpty(host.Queue.Sent);
        Assert.AreEqual(0, host.Queue.SendCalls);
    }

    [TestMethod]
    public async Task Events_BadMessageIdAndPermanentErrorInOneEvent_ListsBothProblems()
    {
        var (response, _) = await PostAsync("""{"type":"track","messageId":[],"userId":"u-1"}""");

        Assert.AreEqual(400, response.Status);
        var fields = response.Errors.Select(e => e.GetProperty("field").GetString()).ToArray();
        Assert.AreEqual("messageId,event", string.Join(",", fields));
    }

    [TestMethod]
    public async Task Events_IdentifyWithUserIdOnlyUnderEnforceEmailAsPrimary_Answers400()
    {
        var settings = new KlaviyoOptions { PrivateApiKey = "pk_test_0123456789", EnforceEmailAsPrimary = true };

        var (response, _) = await PostAsync("""{"type":"identify","userId":"u-1"}""", settings);

        AssertSingleError(response, 0, "email", "EnforceEmailAsPrimary");
    }

    [TestMethod]
    public async Task Events_IdentifyWithUserIdOnlyByDefault_IsAccepted()
    {
        var (response, host) = await PostAsync("""{"type":"identify","userId":"u-1"}""");

        Assert.AreEqual(202, response.Status);
        Assert.HasCount(1, host.Queue.Sent);
    }

    [TestMethod]
    public async Task Events_TrackWithoutTimestamp_IsAcceptedBecauseReceivedAtGivesTheTime()
    {
        var (response, host) = await PostAsync("""{"type":"track","anonymousId":"anon-1","event":"Viewed"}""");

        Assert.AreEqual(202, response.Status);
        Assert.AreEqual("2026-11-28T12:30:15.123Z", IngestHost.BodyOf(host.Queue.Sent.Single()).GetProperty("receivedAt").GetString());
    }
}
