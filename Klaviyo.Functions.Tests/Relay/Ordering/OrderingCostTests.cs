using System.Text.Json;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Tests.Relay.Ordering;

/// <summary>What the Azure barrier costs on the standard mix (<c>bench/event-mix.jsonl</c>, 10,000 events): the mix
/// ingested as the ingest queues it, relayed through the Relay function in batches of host.json's
/// <c>maxMessageBatchSize</c> (1,000) against a Klaviyo that accepts everything, the barrier in the Table-storage fake.
/// Nothing fails, so the barrier only reads: once per distinct ordering key of a batch's ordered events.</summary>
[TestClass]
public sealed class OrderingCostTests
{
    private const int BatchSize = 1000;
    private const string ImportPath = "/api/profile-bulk-import-jobs";

    public TestContext TestContext { get; set; } = null!;

    /// <summary>The events to relay: the file named by <c>KLAVIYO_EVENT_MIX</c> (the standard mix, for the figure in
    /// docs/delivery.md), else 4,000 generated events of the mix's shape (per 20: 11 track, 2 page, 2 screen, 4 identify,
    /// 1 group) over 300 people, so that keys repeat within a batch.</summary>
    private static string[] Mix()
    {
        if (Environment.GetEnvironmentVariable("KLAVIYO_EVENT_MIX") is { Length: > 0 } path)
        {
            return File.ReadAllLines(path);
        }
        string[] types = ["identify", "identify", "identify", "identify", "track", "track", "track", "track", "track", "track", "track", "track", "track", "track", "page", "page", "screen", "screen", "group", "track"];
        return [.. Enumerable.Range(0, 4000).Select(i =>
        {
            var type = types[i % types.Length];
            var extra = type switch
            {
                "track" => ",\"event\":\"Viewed Product\"",
                "screen" or "page" => ",\"name\":\"Home\"",
                "group" => ",\"groupId\":\"LIST2\"",
                _ => ",\"traits\":{\"email\":\"user" + (i % 300) + "@example.com\",\"properties\":{\"listId\":\"LIST1\",\"subscribe\":true}}",
            };
            return "{\"type\":\"" + type + "\",\"userId\":\"user-" + (i % 300) + "\",\"messageId\":\"mix-" + i + "\"" + extra + "}";
        })];
    }

    [TestMethod]
    public async Task StandardMix_TheBarrierReadsOncePerDistinctOrderedKeyPerBatch()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/event-bulk-create-jobs", 202)
            .Answer(ImportPath, 202, "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"job-1\",\"attributes\":{\"status\":\"queued\",\"total_count\":1,\"completed_count\":0,\"failed_count\":0}}}")
            .Answer("/api/profile-subscription-bulk-create-jobs", 202)
            .Answer("/api/profile-subscription-bulk-delete-jobs", 202);
        var table = new FakeBarrierTable();
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, configure: services => services.AddSingleton<IBarrierTable>(table));
        var validator = new EventValidator(host.Services.GetRequiredService<KlaviyoTransformer>(), Microsoft.Extensions.Options.Options.Create(new IngestOptions()));
        var lines = Mix();

        var events = 0;
        var expectedReads = 0;
        foreach (var chunk in lines.Chunk(BatchSize))
        {
            var outcome = validator.Validate(System.Text.Encoding.UTF8.GetBytes("[" + string.Join(",", chunk) + "]"), null, host.Time!.GetUtcNow());
            var queued = ((ValidationOutcome.Valid)outcome).Events;
            expectedReads += queued.Where(q => q.Ordering is not null).Select(q => q.Ordering!.Key).Distinct().Count();
            var bus = new SimulatedServiceBus(host);
            foreach (var message in queued)
            {
                bus.Send(message);
            }
            await bus.RunNextAsync(TestContext.CancellationToken);
            events += queued.Count;
        }

        var ordered = lines.Count(l => JsonDocument.Parse(l).RootElement.GetProperty("type").GetString() is "identify" or "group");
        var perThousand = table.Reads * 1000.0 / events;
        TestContext.WriteLine($"mix: {events} events ({ordered} ordered) in batches of {BatchSize}: {table.Reads} barrier reads, {perThousand:F0} per 1,000 events, {table.Writes} writes");
        Assert.AreEqual(expectedReads, table.Reads, "one read per distinct ordering key of a batch");
        Assert.AreEqual(0, table.Writes, "nothing failed: the barrier writes nothing");
        Assert.IsLessThanOrEqualTo(ordered, table.Reads);
    }
}
