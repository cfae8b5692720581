using System.Text;
using System.Text.Json.Nodes;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Local;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Klaviyo.Functions.Tests.Relay;

/// <summary>Issue 18, item 1: a parked (deferred) message never outlives every holder of its sequence number, against a
/// receiver that behaves like the broker (a locked deferred message answers <c>MessageNotFound</c>; a deferred message
/// never expires on its own).</summary>
[TestClass]
public sealed class ParkedMessagesTests
{
    private const string ImportPath = "/api/profile-bulk-import-jobs";

    public TestContext TestContext { get; set; } = null!;

    private static List<ServiceBusReceivedMessage> Profiles(int count) =>
        Enumerable.Range(0, count).Select(i => RelayTestHost.Message(
            $$$"""{"type":"identify","messageId":"p-{{{i}}}","userId":"u-{{{i}}}","timestamp":"2026-11-20T10:00:00Z","traits":{"email":"user{{{i}}}@example.com"}}""", $"p-{i}", 1, "identify")).ToList();

    private static string JobAnswer(string id, string status) =>
        "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"" + id + "\",\"attributes\":{\"status\":\"" + status + "\",\"total_count\":10,\"completed_count\":10,\"failed_count\":0}}}";

    private static ServiceBusReceivedMessage AsReceived(global::Klaviyo.Functions.Queue.QueuedEvent queued) =>
        RelayTestHost.Message(Encoding.UTF8.GetString(queued.Body.Span), queued.MessageId, queued.Attempt, queued.Subject);

    private static FakeKlaviyo CompletedJob(string id) => FakeKlaviyo.Start()
        .Answer(ImportPath, 202, JobAnswer(id, "queued"))
        .AnswerGet($"{ImportPath}/{id}", 200, JobAnswer(id, "complete"))
        .AnswerGet($"{ImportPath}/{id}/import-errors", 200, "{\"data\":[],\"links\":{\"self\":\"x\"}}");

    /// <summary>Relays <paramref name="count"/> profiles as one batch (one import job) and hands their deferred messages to a receiver.</summary>
    private async Task<(RecordingReceiver Receiver, List<ServiceBusReceivedMessage> Deferred)> ParkAsync(RelayTestHost host, int count)
    {
        var actions = new RecordingMessageActions();
        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. Profiles(count)], actions, TestContext.CancellationToken);
        Assert.AreEqual(count, actions.Calls.Count(c => c.Action == "Defer"));
        var receiver = new RecordingReceiver();
        receiver.Hold(actions.Deferred);
        return (receiver, actions.Deferred);
    }

    private static List<(global::Klaviyo.Functions.Queue.QueuedEvent Event, DateTimeOffset At)> Trackers(RelayTestHost host) =>
        host.Queue.Scheduled.Where(s => s.Event.Subject == RelayMessage.ImportJobSubject).ToList();

    [TestMethod]
    public async Task Tracker_SomeMessagesLockedElsewhere_NotDoneWhileTheyAreParkedAndComesBackForThemAfterTheLock()
    {
        using var klaviyo = CompletedJob("job-l");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var (receiver, deferred) = await ParkAsync(host, 10);
        // A run that died (or another receiver) holds three of them: the broker answers MessageNotFound for those.
        receiver.LockElsewhere(deferred.Take(3).Select(m => m.SequenceNumber));
        var trackerActions = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(Trackers(host).Single().Event)], trackerActions, TestContext.CancellationToken);

        Assert.AreEqual(7, receiver.Calls.Count(c => c.Action == "Complete"));
        Assert.AreEqual(3, receiver.StillDeferred);
        var trackers = Trackers(host);
        Assert.HasCount(2, trackers, "a tracker comes back for the three still parked");
        Assert.AreEqual(host.Time!.GetUtcNow() + ImportJobTracker.AfterLock, trackers[1].At, "once their lock has run out");
        Assert.AreEqual("Complete", trackerActions.Calls.Single().Action, "the old tracker is replaced, not lost");

        receiver.LapseLocks();
        host.Time.Advance(ImportJobTracker.AfterLock);
        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(trackers[1].Event)], new RecordingMessageActions(), TestContext.CancellationToken);

        Assert.AreEqual(10, receiver.Calls.Count(c => c.Action == "Complete"));
        Assert.AreEqual(0, receiver.StillDeferred, "nothing left parked");
        Assert.HasCount(2, Trackers(host), "and no tracker after that");
    }

    [TestMethod]
    public async Task Tracker_SettlingTheGroupFails_TheMessagesGivenBackGetATrackerInsteadOfBeingLeftParked()
    {
        using var klaviyo = CompletedJob("job-g");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var (receiver, _) = await ParkAsync(host, 10);
        receiver.Throws["Complete"] = new ServiceBusException("The service was busy.", ServiceBusFailureReason.ServiceBusy);

        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(Trackers(host).Single().Event)], new RecordingMessageActions(), TestContext.CancellationToken);

        Assert.AreEqual(10, receiver.Calls.Count(c => c.Action == "Defer"), "each given back: deferred again");
        Assert.AreEqual(10, receiver.StillDeferred);
        var trackers = Trackers(host);
        Assert.HasCount(2, trackers, "the job is not done while its messages are parked");

        receiver.Throws.Clear();
        var refused = receiver.Calls.Count(c => c.Action == "Complete");
        host.Time!.Advance(ImportJobTracker.AfterLock);
        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(trackers[1].Event)], new RecordingMessageActions(), TestContext.CancellationToken);

        Assert.AreEqual(0, receiver.StillDeferred);
        Assert.AreEqual(refused + 10, receiver.Calls.Count(c => c.Action == "Complete"), "settled by the tracker that came back");
    }

    [TestMethod]
    public async Task Tracker_ALaterChunkOfTheTakeBackFails_ReleasesWhatItTookAndItsNextDeliverySettlesEveryMessage()
    {
        using var klaviyo = CompletedJob("job-c");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var (receiver, _) = await ParkAsync(host, 150);
        receiver.FailReceiveCall = 2; // the second chunk of 100
        var tracker = AsReceived(Trackers(host).Single().Event);
        var first = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([tracker], first, TestContext.CancellationToken);

        Assert.AreEqual("Abandon", first.Calls.Single().Action, "the tracker is given back");
        Assert.AreEqual(0, receiver.Locked, "the first chunk is not left locked by the relay's own receiver");
        Assert.AreEqual(150, receiver.StillDeferred);

        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([tracker], new RecordingMessageActions(), TestContext.CancellationToken);

        Assert.AreEqual(150, receiver.Calls.Count(c => c.Action == "Complete"));
        Assert.AreEqual(0, receiver.StillDeferred);
    }

    [TestMethod]
    public async Task Tracker_UnreadableButNamingItsMessages_DeadLetteredByNameAndItsParkedMessagesRetried()
    {
        using var klaviyo = CompletedJob("job-u");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var (receiver, _) = await ParkAsync(host, 10);
        var ticket = JsonNode.Parse(Trackers(host).Single().Event.Body.Span)!;
        ticket["items"]![0]!["identity"] = "not-a-hash";
        var actions = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync(
            [RelayTestHost.Message(ticket.ToJsonString(), "\u001Fjob-u\u001Fpoll-1", subject: RelayMessage.ImportJobSubject)], actions, TestContext.CancellationToken);

        var dead = actions.Calls.Single();
        Assert.AreEqual("DeadLetter", dead.Action);
        Assert.AreEqual(nameof(DeadLetterReason.MalformedMessage), dead.Reason);
        Assert.Contains("items[0].identity", dead.Description!);
        Assert.Contains("10 parked message(s)", dead.Description!);
        var copies = host.Queue.Scheduled.Where(s => s.Event.Subject == "identify").ToList();
        Assert.HasCount(10, copies, "each parked message retried");
        Assert.IsTrue(copies.All(c => c.Event.Attempt == 2), "as a failure of the relay's own code: attempt + 1");
        Assert.AreEqual(0, receiver.StillDeferred, "none left parked");
    }

    [TestMethod]
    public async Task Sweep_MessagesParkedPastTheJobWaitBound_QueuedAgainSameAttemptAndRecentOnesLeftToTheirTracker()
    {
        using var klaviyo = FakeKlaviyo.Start();
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var now = host.Time!.GetUtcNow();
        var orphans = Profiles(3);
        var waiting = Enumerable.Range(10, 2).Select(i => RelayTestHost.Message($$"""{"type":"identify","messageId":"w-{{i}}","userId":"w"}""", $"w-{i}", 1, "identify")).ToList();
        var receiver = new RecordingReceiver();
        receiver.Hold(orphans, deferredAt: now - ParkedSweeper.OrphanAge - TimeSpan.FromMinutes(1));
        receiver.Hold(waiting, deferredAt: now - TimeSpan.FromHours(1));
        var sweeper = host.Services.GetRequiredService<ParkedSweeper>();

        var swept = await sweeper.SweepAsync(new ServiceBusSettlement(new RecordingMessageActions(), host.Queue, () => receiver, host.Time), TestContext.CancellationToken);

        Assert.AreEqual(3, swept);
        var copies = host.Queue.Scheduled.Where(s => s.Event.Subject == "identify").ToList();
        Assert.AreSequenceEqual(new[] { "p-0", "p-1", "p-2" }, copies.Select(c => c.Event.EventMessageId).Order(StringComparer.Ordinal).ToArray());
        Assert.IsTrue(copies.All(c => c.Event.Attempt == 1 && c.At == now), "at once, without spending an attempt");
        Assert.AreEqual(2, receiver.StillDeferred, "those parked for less than the bound are their tracker's");
        var logged = host.AllLogText();
        Assert.IsTrue(orphans.All(o => logged.Contains(o.MessageId, StringComparison.Ordinal)), "each named in the log");
    }

    [TestMethod]
    public async Task Defer_ThroughTheInvocation_StampsWhenTheMessageWasParked()
    {
        using var klaviyo = CompletedJob("job-d");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue, time: host.Time).RunAsync([.. Profiles(10)], actions, TestContext.CancellationToken);

        Assert.HasCount(10, actions.DeferredWith);
        Assert.IsTrue(actions.DeferredWith.All(p => p is not null && (long)p[ServiceBusSettlement.DeferredAtProperty] == host.Time!.GetUtcNow().ToUnixTimeMilliseconds()));
    }

    [TestMethod]
    public async Task LocalQueue_UnreadableTracker_DeadLetteredAndTheEventsItParkedRetriedNotLeftParked()
    {
        using var klaviyo = CompletedJob("job-local");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var directory = Directory.CreateTempSubdirectory("klaviyo-parked-").FullName;
        try
        {
            var options = new LocalOptions { DatabasePath = Path.Combine(directory, "relay.db"), DeadLetterPath = Path.Combine(directory, "dead.jsonl") };
            using var queue = SqliteEventQueue.Open(options, host.Time);
            using var file = new DeadLetterFile(options.DeadLetterPath, host.Time!);
            var settlement = new LocalSettlement(queue, file, host.Time!, NullLogger<LocalSettlement>.Instance, Microsoft.Extensions.Options.Options.Create(new LocalOptions()));
            await queue.SendAsync(Profiles(10).Select(m => new global::Klaviyo.Functions.Queue.QueuedEvent(m.MessageId, "identify", m.Body.ToMemory())).ToList(), TestContext.CancellationToken);
            await host.Settler.RelayBatchAsync(settlement, (await queue.LeaseAsync(100, TimeSpan.FromMinutes(2))).Select(LocalSettlement.Delivery).ToList(), TestContext.CancellationToken);
            Assert.AreEqual(10, queue.Counts().Deferred);
            host.Time!.Advance(ImportJobTracker.FirstPoll);
            var tracker = (await queue.LeaseAsync(100, TimeSpan.FromMinutes(2))).Single();
            var ticket = JsonNode.Parse(tracker.Body.Span)!;
            ticket["createdAt"] = "yesterday";

            await host.Settler.RelayBatchAsync(settlement, [LocalSettlement.Delivery(tracker with { Body = Encoding.UTF8.GetBytes(ticket.ToJsonString()) })], TestContext.CancellationToken);

            var counts = queue.Counts();
            Assert.AreEqual(0, counts.Deferred, "nothing left parked");
            Assert.AreEqual(1, counts.DeadLettered, "the tracker, by name");
            Assert.AreEqual(10, counts.Scheduled, "the events retried");
            Assert.Contains("MalformedMessage", await File.ReadAllTextAsync(options.DeadLetterPath, TestContext.CancellationToken));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }
}
