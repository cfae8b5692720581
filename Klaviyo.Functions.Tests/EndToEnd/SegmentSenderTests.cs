using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// The built app in local mode set up for Segment's Webhooks (Actions) destination: bodies and signatures exactly as
/// Segment's Node code writes them (<see cref="SegmentSignedFixtures"/>), a fake Klaviyo on 127.0.0.1.
/// </summary>
[TestClass]
public sealed class SegmentSenderTests
{
    private const string Key = "pk_e2e_segment_key";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task SegmentSha1_SingleAndBatchSignedTheSegmentWay_AreAcceptedAndDelivered()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/events", 202)
            .Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("01HSEGMENT"));
        await using var app = await StartAsync(klaviyo.BaseUrl, new()
        {
            ["Ingest__SigningSecret"] = SegmentSignedFixtures.Secret,
            ["Ingest__SignatureScheme"] = "segment-sha1",
        });

        using var single = await PostAsync(app, SegmentSignedFixtures.Single, SegmentSignedFixtures.SingleSignature);
        Assert.AreEqual(HttpStatusCode.Accepted, single.StatusCode, await single.Content.ReadAsStringAsync(TestContext.CancellationToken));
        using var batch = await PostAsync(app, SegmentSignedFixtures.Batch, SegmentSignedFixtures.BatchFirstElementSignature);
        Assert.AreEqual(HttpStatusCode.Accepted, batch.StatusCode, await batch.Content.ReadAsStringAsync(TestContext.CancellationToken));
        Assert.AreEqual(2, (int)JsonNode.Parse(await batch.Content.ReadAsStringAsync(TestContext.CancellationToken))!["accepted"]!);

        var received = await WaitForAsync(klaviyo, 3);
        var uniqueIds = received.Where(r => r.Path == "/api/events")
            .Select(r => (string?)JsonNode.Parse(r.Body)!["data"]!["attributes"]!["unique_id"]).Order().ToArray();
        Assert.AreSequenceEqual(new[] { "seg-batch-1", "seg-single-1" }, uniqueIds);
        Assert.ContainsSingle(received.Where(r => r.Path == "/api/profile-import"));
    }

    [TestMethod]
    public async Task SegmentSha1_WrongOrSha256Signature_Is401NamingTheScheme()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        await using var app = await StartAsync(klaviyo.BaseUrl, new()
        {
            ["Ingest__SigningSecret"] = SegmentSignedFixtures.Secret,
            ["Ingest__SignatureScheme"] = "segment-sha1",
        });

        // The signature of the single event does not sign the batch, nor the batch's the single event.
        using var wrong = await PostAsync(app, SegmentSignedFixtures.Batch, SegmentSignedFixtures.SingleSignature);
        using var swapped = await PostAsync(app, SegmentSignedFixtures.Single, SegmentSignedFixtures.BatchFirstElementSignature);
        using var unsigned = await PostAsync(app, SegmentSignedFixtures.Single, null);

        foreach (var response in new[] { wrong, swapped, unsigned })
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.AreEqual("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("segment-sha1", await response.Content.ReadAsStringAsync(TestContext.CancellationToken));
        }
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.IsEmpty(klaviyo.Received);
    }

    [TestMethod]
    public async Task GroupModeSkip_SegmentGroup_ReachesKlaviyoNotAtAllAndIsCountedSkipped()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/events", 202)
            .Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("01HSEGMENT"));
        await using var app = await StartAsync(klaviyo.BaseUrl, new() { ["Klaviyo__GroupMode"] = "skip" });
        var body = Encoding.UTF8.GetBytes("""
            [{"type":"group","messageId":"seg-group-1","userId":"u-1","groupId":"acct-42","traits":{"name":"Acme Inc","email":"billing@acme.example"}},
             {"type":"track","messageId":"seg-track-1","userId":"u-1","event":"Signed Up"}]
            """);

        using var response = await PostAsync(app, body, null);
        Assert.AreEqual(HttpStatusCode.Accepted, response.StatusCode, await response.Content.ReadAsStringAsync(TestContext.CancellationToken));

        // The track is the witness that the queue was worked: once it arrived, the group (queued first) was decided too.
        var received = await WaitForAsync(klaviyo, 1);
        await app.WaitForBacklogAsync(backlog => (int)backlog["deferred"]! + (int)backlog["ready"]! + (int)backlog["scheduled"]! + (int)backlog["leased"]! == 0, Patience, TestContext.CancellationToken);
        Assert.AreEqual(0, await app.StopAsync(Patience));
        Assert.AreEqual("/api/events", Assert.ContainsSingle(klaviyo.Received).Path);
        Assert.AreEqual("seg-track-1", (string?)JsonNode.Parse(received[0].Body)!["data"]!["attributes"]!["unique_id"]);
        Assert.Contains("1 delivered, 1 skipped, 0 dead-lettered, 0 still queued", app.Output);
    }

    [TestMethod]
    public async Task UnknownGroupMode_FailsStartUpNamingTheSetting()
    {
        using var klaviyo = FakeKlaviyo.Start();
        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => StartAsync(klaviyo.BaseUrl, new() { ["Klaviyo__GroupMode"] = "account" }));

        Assert.Contains("Klaviyo__GroupMode", failure.Message);
    }

    [TestMethod]
    public async Task UnknownSignatureScheme_FailsStartUpNamingTheSetting()
    {
        using var klaviyo = FakeKlaviyo.Start();
        var failure = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => StartAsync(klaviyo.BaseUrl, new() { ["Ingest__SignatureScheme"] = "sha1" }));

        Assert.Contains("Ingest__SignatureScheme", failure.Message);
    }

    private async Task<LocalAppProcess> StartAsync(string klaviyoBaseUrl, Dictionary<string, string> extra)
    {
        var deadLetters = Path.Combine(Path.GetTempPath(), $"klaviyo-e2e-{TestContext.TestName}-{Guid.NewGuid():N}.jsonl");
        var settings = new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = Key,
            ["Klaviyo__BaseUrl"] = klaviyoBaseUrl,
            ["Local__DeadLetterPath"] = deadLetters,
            ["Local__DatabasePath"] = deadLetters + ".db",
            ["Relay__InCallRetryDelay"] = "00:00:00.1",
        };
        foreach (var (name, value) in extra)
        {
            settings[name] = value;
        }
        return await LocalAppProcess.StartAsync(settings, Patience);
    }

    private async Task<HttpResponseMessage> PostAsync(LocalAppProcess app, byte[] body, string? signature)
    {
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/events") { Content = content };
        if (signature is not null)
        {
            request.Headers.Add("X-Signature", signature);
        }
        return await http.SendAsync(request, TestContext.CancellationToken);
    }

    private async Task<IReadOnlyList<ReceivedRequest>> WaitForAsync(FakeKlaviyo klaviyo, int count)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (klaviyo.Received.Count < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.CancellationToken);
        }
        return klaviyo.Received;
    }
}
