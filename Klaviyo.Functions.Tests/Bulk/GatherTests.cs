using System.Text.Json.Nodes;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Tests.Bulk;

/// <summary>Part-full bulk calls wait for the next batch (spec 8, <c>Relay__GatherWindow</c>), against a fake Klaviyo on 127.0.0.1.</summary>
[TestClass]
public sealed class GatherTests
{
    private const string BulkPath = "/api/event-bulk-create-jobs";
    private const string ImportPath = "/api/profile-bulk-import-jobs";

    public TestContext TestContext { get; set; } = null!;

    private static List<BatchMessage> Tracks(int count, DateTimeOffset? waitingSince = null, int from = 0) =>
        Enumerable.Range(from, count).Select(i => BatchPlannerTests.Track($"m-{i}", $"u-{i % 100}") with { WaitingSince = waitingSince }).ToList();

    private static List<BatchMessage> Identifies(int count, DateTimeOffset? waitingSince = null) =>
        Enumerable.Range(0, count).Select(i => BatchPlannerTests.Message($"p-{i}", "{\"type\":\"identify\",\"messageId\":\"p-" + i + "\",\"userId\":\"p-" + i + "\",\"traits\":{\"email\":\"p" + i + "@example.com\"}}") with { WaitingSince = waitingSince }).ToList();

    private static int Events(string body) =>
        JsonNode.Parse(body)!["data"]!["attributes"]!["events-bulk-create"]!["data"]!.AsArray().Sum(e => e!["attributes"]!["events"]!["data"]!.AsArray().Count);

    private static string JobAnswer => "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"job-1\",\"attributes\":{\"status\":\"queued\"}}}";

    [TestMethod]
    public async Task Gathering_1500Events_TheFullCallGoesThePartFullRestWaitsForTheNextBatch()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await BulkRelayProcessorTests.Processor(host).ProcessAsync(Tracks(1500), BulkRelayProcessorTests.Deadline(host), TestContext.CancellationToken, gather: true)).Outcomes;

        Assert.AreEqual("1000", string.Join(",", klaviyo.Received.Select(r => Events(r.Body))));
        Assert.AreEqual(1000, outcomes.Count(o => o is RelayOutcome.Delivered));
        Assert.AreEqual(500, outcomes.Count(o => o is RelayOutcome.Gathered));
    }

    [TestMethod]
    public async Task Gathering_EventsThatWaitedTheirWindow_ThePartFullCallGoes()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var now = host.Services.GetRequiredService<TimeProvider>().GetUtcNow();
        List<BatchMessage> batch = [.. Tracks(300, waitingSince: now - TimeSpan.FromSeconds(1)), .. Tracks(200, from: 300)];

        var outcomes = (await BulkRelayProcessorTests.Processor(host).ProcessAsync(batch, BulkRelayProcessorTests.Deadline(host), TestContext.CancellationToken, gather: true)).Outcomes;

        Assert.AreEqual("500", string.Join(",", klaviyo.Received.Select(r => Events(r.Body))), "the call goes with the newer events on board");
        Assert.IsTrue(outcomes.All(o => o is RelayOutcome.Delivered), string.Join(", ", outcomes.Distinct()));
    }

    [TestMethod]
    public async Task Gathering_Profiles_WaitAsAWholeUntilTheirWindowThenGoInOneImportJob()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(ImportPath, 202, JobAnswer);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var processor = BulkRelayProcessorTests.Processor(host);
        var now = host.Services.GetRequiredService<TimeProvider>().GetUtcNow();

        var first = await processor.ProcessAsync(Identifies(40), BulkRelayProcessorTests.Deadline(host), TestContext.CancellationToken, gather: true);
        Assert.IsTrue(first.Outcomes.All(o => o is RelayOutcome.Gathered));
        Assert.IsEmpty(klaviyo.Received);

        var waited = Identifies(40, waitingSince: now - TimeSpan.FromMilliseconds(1001)).Concat(Identifies(60).Skip(40).Select(m => m)).ToList();
        var second = await processor.ProcessAsync(waited, BulkRelayProcessorTests.Deadline(host), TestContext.CancellationToken, gather: true);

        Assert.IsTrue(second.Outcomes.All(o => o is RelayOutcome.AwaitingJob), string.Join(", ", second.Outcomes.Distinct()));
        var import = Assert.ContainsSingle(klaviyo.Received);
        Assert.AreEqual(ImportPath, import.Path);
        Assert.HasCount(60, JsonNode.Parse(import.Body)!["data"]!["attributes"]!["profiles"]!["data"]!.AsArray());
    }

    [TestMethod]
    public async Task NotGathering_PartFullCallsGoAtOnce()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 202).Answer(ImportPath, 202, JobAnswer);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await BulkRelayProcessorTests.Processor(host).ProcessAsync([.. Tracks(500), .. Identifies(40)], BulkRelayProcessorTests.Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.DoesNotContain(o => o is RelayOutcome.Gathered, outcomes);
        Assert.AreEqual($"{BulkPath},{ImportPath}", string.Join(",", klaviyo.ReceivedPaths.Order()));
    }

    [TestMethod]
    public async Task Gathering_BelowTheBulkThreshold_ALoneEventGoesAtOnce()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await BulkRelayProcessorTests.Processor(host).ProcessAsync(Tracks(1), BulkRelayProcessorTests.Deadline(host), TestContext.CancellationToken, gather: true)).Outcomes;

        Assert.IsInstanceOfType<RelayOutcome.Delivered>(Assert.ContainsSingle(outcomes));
        Assert.AreEqual("/api/events", Assert.ContainsSingle(klaviyo.ReceivedPaths));
    }
}
