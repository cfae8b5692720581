using System.Net;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Privacy;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Logging.Abstractions;

namespace Klaviyo.Functions.Tests.Privacy;

/// <summary><c>POST /api/privacy/deletions</c> (spec 11): what it queues and what it refuses.</summary>
[TestClass]
public sealed class DeletionRouteTests
{
    public TestContext TestContext { get; set; } = null!;

    private readonly RecordingEventQueue _queue = new();

    private DeletionRequestHandler Handler() => new(
        Transforms.Transformer(), _queue, Microsoft.Extensions.Options.Options.Create(new IngestOptions()), new Microsoft.Extensions.Time.Testing.FakeTimeProvider(Transforms.Now),
        NullLogger<DeletionRequestHandler>.Instance);

    private async Task<(int Status, string ContentType, JsonElement Body)> Post(string json)
    {
        var result = await Handler().HandleAsync(new MemoryStream(Encoding.UTF8.GetBytes(json)), TestContext.CancellationToken);
        using var document = JsonDocument.Parse(result.Body);
        return (result.Status, result.ContentType, document.RootElement.Clone());
    }

    [TestMethod]
    public async Task Route_ThreeRequests_QueuesOneAdminDeletionEachAndAnswers202WithTheirIds()
    {
        var (status, _, body) = await Post("""{"requests":[{"userId":"u-42"},{"email":"jane@example.com","phone":"+1 500 555 0006"},{"profileId":"01HPROFILE"}]}""");

        Assert.AreEqual(202, status);
        Assert.AreEqual(3, body.GetProperty("accepted").GetInt32());
        Assert.AreSequenceEqual(_queue.Sent.Select(e => e.MessageId), body.GetProperty("messageIds").EnumerateArray().Select(e => e.GetString()!));
        Assert.IsTrue(_queue.Sent.All(e => e.Subject == "delete"));
        var parts = _queue.Sent.Select(e => (DeletionParts)((TransformResult.Planned)Transforms.Transformer().Transform(e.Body.Span)).Parts).ToList();
        Assert.AreEqual(new DeletionParts(null, null, "u-42", null, AdminRequest: true), parts[0]);
        Assert.AreEqual(new DeletionParts("jane@example.com", "+15005550006", null, null, AdminRequest: true), parts[1]);
        Assert.AreEqual(new DeletionParts(null, null, null, "01HPROFILE", AdminRequest: true), parts[2]);
    }

    [TestMethod]
    [DataRow("""{"requests":[{"userId":"u-1"},{}]}""", "requests[1]", DisplayName = "a request without any identifier")]
    [DataRow("""{"requests":[{"phone":"12"}]}""", "requests[0].phone", DisplayName = "a phone that is not E.164")]
    [DataRow("""{"requests":[{"email":"nobody"}]}""", "requests[0].email", DisplayName = "an email without @")]
    [DataRow("""{"requests":[{"userId":42}]}""", "requests[0].userId", DisplayName = "a userId that is not a string")]
    [DataRow("""{"requests":[{"mail":"jane@example.com"}]}""", "requests[0].mail", DisplayName = "an unknown field")]
    [DataRow("""{"requests":["u-1"]}""", "requests[0]", DisplayName = "a request that is not an object")]
    [DataRow("""{"requests":[]}""", "requests", DisplayName = "no requests")]
    [DataRow("""{"userId":"u-1"}""", "requests", DisplayName = "no requests array")]
    public async Task Route_BadRequest_Is400ProblemNamingTheFieldAndQueuesNothing(string json, string field)
    {
        var (status, contentType, body) = await Post(json);

        Assert.AreEqual(400, status);
        Assert.AreEqual("application/problem+json", contentType);
        Assert.Contains(field, body.GetProperty("errors").EnumerateArray().Select(e => e.GetProperty("field").GetString()!).ToList());
        Assert.IsEmpty(_queue.Sent);
    }

    [TestMethod]
    public async Task Route_101Requests_Is400NamingRequests()
    {
        var json = "{\"requests\":[" + string.Join(",", Enumerable.Range(0, 101).Select(i => $"{{\"userId\":\"u-{i}\"}}")) + "]}";

        var (status, _, body) = await Post(json);

        Assert.AreEqual(400, status);
        Assert.Contains("101 request(s)", body.GetProperty("errors")[0].GetProperty("message").GetString()!);
        Assert.IsEmpty(_queue.Sent);
    }

    [TestMethod]
    public async Task Route_QueueUnavailable_Is503AndReportsNothingAccepted()
    {
        _queue.Failure = new global::Klaviyo.Functions.Queue.QueueUnavailableException("down");

        var (status, _, _) = await Post("""{"requests":[{"userId":"u-1"}]}""");

        Assert.AreEqual(503, status);
    }
}
