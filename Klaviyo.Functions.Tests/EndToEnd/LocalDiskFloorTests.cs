using System.Net;
using System.Text;
using Klaviyo.Functions.Local;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.EndToEnd;

/// <summary>
/// Issue 18 item 7: the built app in local mode on a disk with less free space than <c>Local__MinFreeDiskBytes</c>
/// (set above what the disk has). The ingest answers 503 with Retry-After and queues nothing, and the events the
/// database already held are still leased, delivered and settled: the relay drains what it holds.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class LocalDiskFloorTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task BelowTheFreeDiskFloor_IngestAnswers503_AndHeldEventsAreStillDelivered()
    {
        var database = Path.Combine(Path.GetTempPath(), $"klaviyo-floor-{Guid.NewGuid():N}.db");
        using (var held = SqliteEventQueue.Open(new LocalOptions { DatabasePath = database }))
        {
            await held.SendAsync(
                [.. Enumerable.Range(1, 3).Select(i => new QueuedEvent($"held-{i}", "track", Encoding.UTF8.GetBytes($$"""{"type":"track","messageId":"held-{{i}}","userId":"u-{{i}}","event":"Held"}""")))],
                TestContext.CancellationToken);
        }
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        await using var app = await LocalAppProcess.StartAsync(new Dictionary<string, string>
        {
            ["Klaviyo__PrivateApiKey"] = "pk_disk_floor",
            ["Klaviyo__BaseUrl"] = klaviyo.BaseUrl,
            ["Local__DatabasePath"] = database,
            ["Local__DeadLetterPath"] = Path.Combine(Path.GetTempPath(), $"klaviyo-floor-{Guid.NewGuid():N}.jsonl"),
            ["Local__MinFreeDiskBytes"] = "1099511627776", // 1 TB: more than this disk has free
        });
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };

        using var refused = await http.PostAsync("/api/events", new StringContent("""{"type":"track","messageId":"new-1","userId":"u-9","event":"New"}""", Encoding.UTF8, "application/json"), TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.IsNotNull(refused.Headers.RetryAfter, "Retry-After");
        Assert.Contains("queue-unavailable", await refused.Content.ReadAsStringAsync(TestContext.CancellationToken));
        await app.WaitForBacklogAsync(b => (long)b["ready"]! + (long)b["leased"]! + (long)b["scheduled"]! == 0, TimeSpan.FromSeconds(30), TestContext.CancellationToken);
        var delivered = klaviyo.Received.Where(r => r.Path == "/api/events").Select(r => r.Body).ToList();
        foreach (var id in new[] { "held-1", "held-2", "held-3" })
        {
            Assert.ContainsSingle(delivered.Where(b => b.Contains(id, StringComparison.Ordinal)), id + " delivered");
        }
        Assert.DoesNotContain(true, delivered.Select(b => b.Contains("new-1", StringComparison.Ordinal)).ToList(), "the refused event was not queued");
        Assert.Contains("Local__MinFreeDiskBytes", app.Output);
    }
}
