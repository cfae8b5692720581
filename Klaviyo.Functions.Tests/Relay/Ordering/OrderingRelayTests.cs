using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Klaviyo.Functions.Tests.Relay.Ordering;

/// <summary>
/// Issue 20 on the Azure path: events queued as the ingest queues them (key and arrival as application properties),
/// delivered in batches through the Relay function and its settler on simulated time, the barrier in a fake Table
/// storage, Klaviyo a real HTTP fake. What is asserted is what Klaviyo saw, in order.
/// </summary>
[TestClass]
public sealed class OrderingRelayTests
{
    public TestContext TestContext { get; set; } = null!;

    private static string Identify(string messageId, bool subscribe, string name) =>
        "{\"type\":\"identify\",\"userId\":\"person-1\",\"messageId\":\"" + messageId + "\",\"traits\":{\"email\":\"Person@Example.com\",\"firstName\":\"" + name
        + "\",\"properties\":{\"listId\":\"LIST1\",\"subscribe\":" + (subscribe ? "true" : "false") + "}}}";

    private const string Track = """{"type":"track","userId":"person-1","messageId":"t-1","event":"Viewed Page"}""";

    private sealed class Rig : IDisposable
    {
        public Rig(FakeKlaviyo klaviyo, IDictionary<string, string?>? settings = null)
        {
            var values = new Dictionary<string, string?> { ["Relay:MaxInCallRetries"] = "0" };
            foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            {
                values[key] = value;
            }
            Host = RelayTestHost.Create(klaviyo.BaseUrl, values, services => services.AddSingleton<IBarrierTable>(Table));
            Bus = new SimulatedServiceBus(Host);
            Validator = new EventValidator(Host.Services.GetRequiredService<KlaviyoTransformer>(), Microsoft.Extensions.Options.Options.Create(new IngestOptions()));
            Valves = new MetricCollector<long>(Host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), RelayMetrics.MeterName, RelayMetrics.OrderingValveOpenedName);
            Reads = new MetricCollector<long>(Host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), RelayMetrics.MeterName, RelayMetrics.OrderingBarrierReadsName);
        }

        public FakeBarrierTable Table { get; } = new();

        public RelayTestHost Host { get; }

        public SimulatedServiceBus Bus { get; }

        public EventValidator Validator { get; }

        public MetricCollector<long> Valves { get; }

        public MetricCollector<long> Reads { get; }

        /// <summary>Ingests one request (as the HTTP ingest validates and stamps it) and queues its events.</summary>
        public IReadOnlyList<QueuedEvent> Ingest(params string[] events)
        {
            var outcome = Validator.Validate(System.Text.Encoding.UTF8.GetBytes("[" + string.Join(",", events) + "]"), null, Host.Time!.GetUtcNow());
            var valid = outcome as ValidationOutcome.Valid ?? throw new AssertFailedException($"refused: {outcome}");
            foreach (var queued in valid.Events)
            {
                Bus.Send(queued);
            }
            return valid.Events;
        }

        public void Dispose()
        {
            Valves.Dispose();
            Reads.Dispose();
            Host.Dispose();
        }
    }

    private static FakeKlaviyo KlaviyoWhereTheFirstSubscriptionFails(params (int Status, string? Body)[] subscriptionAnswers)
    {
        var klaviyo = FakeKlaviyo.Start();
        klaviyo.Answer(KlaviyoApi.ProfileImportPath, 200, FakeKlaviyo.ProfileAnswer("01PROFILE"));
        if (subscriptionAnswers.Length == 1)
        {
            klaviyo.Answer(KlaviyoApi.SubscribeProfilesPath, subscriptionAnswers[0].Status, subscriptionAnswers[0].Body);
        }
        else
        {
            klaviyo.AnswerInTurn(KlaviyoApi.SubscribeProfilesPath, subscriptionAnswers);
        }
        klaviyo.Answer(KlaviyoApi.UnsubscribeProfilesPath, 202);
        klaviyo.Answer(KlaviyoApi.CreateEventPath, 202);
        return klaviyo;
    }

    /// <summary>The consent calls Klaviyo answered 2xx, in order: what decides how the person ends.</summary>
    private static List<string> ConsentCalls(FakeKlaviyo klaviyo) => klaviyo.Received
        .Where(r => r.Status is >= 200 and < 300 && r.Path is KlaviyoApi.SubscribeProfilesPath or KlaviyoApi.UnsubscribeProfilesPath)
        .Select(r => r.Path == KlaviyoApi.SubscribeProfilesPath ? "subscribe" : "unsubscribe")
        .ToList();

    [TestMethod]
    public async Task OlderSubscribeRetriedTwice_NewerUnsubscribeWaitsForIt_PersonEndsUnsubscribed_TrackNotHeld()
    {
        using var klaviyo = KlaviyoWhereTheFirstSubscriptionFails((503, null), (503, null), (202, null));
        using var rig = new Rig(klaviyo);
        var token = TestContext.CancellationToken;

        var a = rig.Ingest(Identify("a", subscribe: true, "Old"))[0];
        Assert.AreEqual("person-1", a.Ordering?.Key, "the ingest fixes the ordering key (userId first)");
        await rig.Bus.RunNextAsync(token); // A: subscription 503, retry scheduled: A is now person-1's blocker
        var blockers = rig.Table.Rows.Count(r => r.RowKey.StartsWith(TableOrderingBarrier.BlockerPrefix, StringComparison.Ordinal));
        Assert.AreEqual(1, blockers);

        rig.Host.Time!.Advance(TimeSpan.FromSeconds(5));
        rig.Ingest(Identify("b", subscribe: false, "New"), Track);
        await rig.Bus.RunNextAsync(token); // B held behind A; the track goes at once
        var tracks = klaviyo.Received.Count(r => r.Path == KlaviyoApi.CreateEventPath && r.Status == 202);
        Assert.AreEqual(1, tracks, "the track event of the same person is not held");
        var early = klaviyo.Received.Any(r => r.Path == KlaviyoApi.UnsubscribeProfilesPath);
        Assert.IsFalse(early, "B waits for A");

        await rig.Bus.DrainAsync(token);

        Assert.AreSequenceEqual(new[] { "subscribe", "unsubscribe" }, ConsentCalls(klaviyo).ToArray(), "Klaviyo sees A's subscription before B's unsubscription: the person ends unsubscribed");
        var subscribeTries = klaviyo.Received.Count(r => r.Path == KlaviyoApi.SubscribeProfilesPath);
        Assert.AreEqual(3, subscribeTries, "A took three attempts");
        var deadLetters = rig.Bus.Actions.Calls.Count(c => c.Action == "DeadLetter");
        Assert.AreEqual(0, deadLetters);
        // B never spent an attempt: every copy of it was scheduled as attempt 1.
        var copiesOfB = rig.Host.Queue.Scheduled.Where(s => s.Event.EventMessageId == "b").Select(s => s.Event.Attempt).ToList();
        Assert.IsNotEmpty(copiesOfB, "B was held at least once");
        var spent = copiesOfB.Any(attempt => attempt != 1);
        Assert.IsFalse(spent, "a held message spends no attempt");
        var left = rig.Table.Rows.Count(r => r.RowKey.StartsWith(TableOrderingBarrier.BlockerPrefix, StringComparison.Ordinal));
        Assert.AreEqual(0, left, "A's blocker row is cleared once it is delivered");
        var trackHeld = rig.Host.Queue.Scheduled.Any(s => s.Event.EventMessageId == "t-1");
        Assert.IsFalse(trackHeld, "the track was never put off");
    }

    [TestMethod]
    public async Task OlderSubscribeDeadLettered_TheNextHeldGoesAfterItAlone_ThenTheRest()
    {
        using var klaviyo = KlaviyoWhereTheFirstSubscriptionFails((503, null), (400, FakeKlaviyo.ErrorAnswer(400, "invalid", "bad list", null)), (202, null));
        using var rig = new Rig(klaviyo);
        var token = TestContext.CancellationToken;

        rig.Ingest(Identify("a", subscribe: true, "Old"));
        await rig.Bus.RunNextAsync(token); // A: 503, now the blocker
        rig.Host.Time!.Advance(TimeSpan.FromSeconds(5));
        rig.Ingest(Identify("b", subscribe: false, "Newer"));
        rig.Host.Time.Advance(TimeSpan.FromSeconds(1));
        rig.Ingest(Identify("c", subscribe: false, "Newest"));
        await rig.Bus.DrainAsync(token);

        var dead = rig.Bus.Actions.Calls.Where(c => c.Action == "DeadLetter").Select(c => c.MessageId).ToList();
        Assert.HasCount(1, dead);
        Assert.StartsWith("a", dead[0]);
        Assert.AreSequenceEqual(new[] { "unsubscribe", "unsubscribe" }, ConsentCalls(klaviyo).ToArray(), "A's subscription never lands; B and C do");
        // After the dead letter B goes first, alone: no batch carried B and C to Klaviyo together.
        var imports = klaviyo.Received.Where(r => r.Path == KlaviyoApi.ProfileImportPath && r.Status == 200).Select(r => r.Body).ToList();
        var bIndex = imports.FindIndex(body => body.Contains("Newer", StringComparison.Ordinal));
        var cIndex = imports.FindIndex(body => body.Contains("Newest", StringComparison.Ordinal) && !body.Contains("Newer", StringComparison.Ordinal));
        Assert.IsTrue(bIndex >= 0 && cIndex > bIndex, $"B's profile goes before C's, on its own: {string.Join(" | ", imports)}");
        var unsubscribes = klaviyo.Received.Where(r => r.Path == KlaviyoApi.UnsubscribeProfilesPath).ToList();
        Assert.HasCount(2, unsubscribes, "B and C were sent in two calls, not merged into one");
    }

    [TestMethod]
    public async Task OrderingOff_TheNewerUnsubscribeOvertakesTheRetriedSubscribe()
    {
        // The control: without the barrier the bug of issue 20 shows (the person ends subscribed again).
        using var klaviyo = KlaviyoWhereTheFirstSubscriptionFails((503, null), (202, null));
        using var rig = new Rig(klaviyo, new Dictionary<string, string?> { ["Relay:Ordering"] = "off" });
        var token = TestContext.CancellationToken;

        rig.Ingest(Identify("a", subscribe: true, "Old"));
        await rig.Bus.RunNextAsync(token);
        rig.Host.Time!.Advance(TimeSpan.FromSeconds(5));
        rig.Ingest(Identify("b", subscribe: false, "New"));
        await rig.Bus.DrainAsync(token);

        Assert.AreSequenceEqual(new[] { "unsubscribe", "subscribe" }, ConsentCalls(klaviyo).ToArray());
        Assert.AreEqual(0, rig.Table.Reads);
    }

    [TestMethod]
    public async Task BarrierUnreadable_OrderedMessagesArePutOffWithoutSpendingAnAttempt_TrackStillGoes()
    {
        using var klaviyo = KlaviyoWhereTheFirstSubscriptionFails((202, null));
        using var rig = new Rig(klaviyo);
        var token = TestContext.CancellationToken;
        rig.Table.ReadFailure = new Azure.RequestFailedException(503, "storage unavailable");

        rig.Ingest(Identify("a", subscribe: true, "Old"), Track);
        await rig.Bus.RunNextAsync(token);

        var imports = klaviyo.Received.Count(r => r.Path == KlaviyoApi.ProfileImportPath);
        Assert.AreEqual(0, imports, "never sent unchecked");
        var events = klaviyo.Received.Count(r => r.Path == KlaviyoApi.CreateEventPath);
        Assert.AreEqual(1, events);
        var copy = rig.Host.Queue.Scheduled.Single(s => s.Event.EventMessageId == "a").Event;
        Assert.AreEqual(1, copy.Attempt, "put off as the same attempt");
        Assert.AreEqual("person-1", copy.Ordering?.Key, "the copy keeps its key");

        rig.Table.ReadFailure = null;
        await rig.Bus.DrainAsync(token);
        Assert.AreSequenceEqual(new[] { "subscribe" }, ConsentCalls(klaviyo).ToArray(), string.Join(", ", klaviyo.Received.Select(r => $"{r.Path} {r.Status}")) + " / " + string.Join(", ", rig.Bus.Actions.Calls.Select(c => c.Action + " " + c.MessageId + " " + c.Description)));
        var failedReads = rig.Reads.GetMeasurementSnapshot().Count(m => Equals(m.Tags["result"], "failed"));
        Assert.AreEqual(1, failedReads);
    }
}
