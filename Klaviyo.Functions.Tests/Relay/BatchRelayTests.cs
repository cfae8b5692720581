using System.Text;
using System.Text.Json.Nodes;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Relay;

/// <summary>The batched Relay trigger end to end against the fake Klaviyo (spec 8): one decision for the batch, one
/// settlement per message, import jobs parked behind a tracker that settles them once Klaviyo reports the job.</summary>
[TestClass]
public sealed class BatchRelayTests
{
    private const string ImportPath = "/api/profile-bulk-import-jobs";

    public TestContext TestContext { get; set; } = null!;

    private static ServiceBusReceivedMessage Track(string id, string user, string name = "Clicked") =>
        RelayTestHost.Message($$"""{"type":"track","messageId":"{{id}}","userId":"{{user}}","event":"{{name}}"}""", id);

    private static ServiceBusReceivedMessage Identify(string id, string user, string traits, int attempt = 1) =>
        RelayTestHost.Message($$"""{"type":"identify","messageId":"{{id}}","userId":"{{user}}","timestamp":"2026-11-20T10:00:00Z","traits":{{traits}}}""", id, attempt, "identify");

    private static List<ServiceBusReceivedMessage> Profiles(int count, int attempt = 1) =>
        Enumerable.Range(0, count).Select(i => Identify($"p-{i}", $"u-{i}", $$"""{"email":"user{{i}}@example.com"}""", attempt)).ToList();

    private static string JobAnswer(string id, string status, int failed = 0) =>
        "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"" + id + "\",\"attributes\":{\"status\":\"" + status + "\",\"total_count\":500,\"completed_count\":500,\"failed_count\":" + failed + "}}}";

    private static string ImportErrors(params (int Item, string Detail)[] errors) =>
        "{\"data\":[" + string.Join(",", errors.Select((e, n) => "{\"type\":\"import-error\",\"id\":\"e" + n + "\",\"attributes\":{\"code\":\"invalid\",\"title\":\"Invalid input.\",\"detail\":\"" + e.Detail + "\",\"source\":{\"pointer\":\"/data/attributes/profiles/data/" + e.Item + "/attributes/email\"}}}")) + "],\"links\":{\"self\":\"x\"}}";

    private static ServiceBusReceivedMessage AsReceived(global::Klaviyo.Functions.Queue.QueuedEvent queued) =>
        RelayTestHost.Message(Encoding.UTF8.GetString(queued.Body.Span), queued.MessageId, queued.Attempt, queued.Subject);

    private static KlaviyoEndpoint EndpointOf(string path) => path switch
    {
        "/api/event-bulk-create-jobs" => KlaviyoEndpoint.BulkCreateEvents,
        ImportPath => KlaviyoEndpoint.BulkImportProfiles,
        "/api/profile-subscription-bulk-create-jobs" => KlaviyoEndpoint.SubscribeProfiles,
        _ => throw new AssertFailedException($"unexpected call to {path}"),
    };

    [TestMethod]
    public async Task Batch_MixedEventsProfilesSubscriptionsAndBadMessages_SplitIntoValidBulkCallsAndEachMessageSettledOnItsOwn()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/event-bulk-create-jobs", 202)
            .AnswerInTurn(ImportPath, (202, JobAnswer("job-a", "queued")), (202, JobAnswer("job-b", "queued")))
            .Answer("/api/profile-subscription-bulk-create-jobs", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var batch = new List<ServiceBusReceivedMessage>();
        batch.AddRange(Enumerable.Range(0, 12).Select(i => Track($"t-{i}", $"u-{i}")));
        batch.AddRange(Enumerable.Range(0, 12).Select(i => Identify($"l-{i}", $"l-{i}", "{\"email\":\"l" + i + "@example.com\",\"properties\":{\"listId\":\"L1\"}}")));
        batch.AddRange(Enumerable.Range(0, 10).Select(i => Identify($"s-{i}", $"s-{i}", "{\"email\":\"s" + i + "@example.com\",\"properties\":{\"listId\":\"L2\",\"subscribe\":true,\"consent\":\"email\"}}")));
        batch.Add(RelayTestHost.Message("""{"type":"track","messageId":"invalid","userId":"u-1"}""", "invalid"));
        batch.Add(RelayTestHost.Message("{not json", "malformed"));
        batch.Add(Track("t-3", "u-3"));
        var actions = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. batch], actions, TestContext.CancellationToken);

        Assert.AreEqual("/api/event-bulk-create-jobs,/api/profile-bulk-import-jobs,/api/profile-bulk-import-jobs,/api/profile-subscription-bulk-create-jobs",
            string.Join(",", klaviyo.ReceivedPaths.Order(StringComparer.Ordinal)), "one call per kind and list, not one per message: " + string.Join(" | ", klaviyo.Received.Select(r => r.Path + " " + r.Status + " " + r.Body[..Math.Min(300, r.Body.Length)])));
        foreach (var request in klaviyo.Received)
        {
            var errors = KlaviyoSchemas.Validate(EndpointOf(request.Path), Encoding.UTF8.GetBytes(request.Body));
            Assert.IsEmpty(errors, $"{request.Path}: {string.Join("; ", errors)}");
        }
        var events = JsonNode.Parse(klaviyo.Received.Single(r => r.Path == "/api/event-bulk-create-jobs").Body)!["data"]!["attributes"]!["events-bulk-create"]!["data"]!.AsArray();
        Assert.HasCount(12, events, "the repeated t-3 is sent once");
        var calls = actions.Calls;
        Assert.HasCount(batch.Count, calls, "every message settled exactly once");
        Assert.AreEqual(13, calls.Count(c => c.Action == "Complete" && c.MessageId.StartsWith("t-", StringComparison.Ordinal)));
        Assert.AreEqual(22, calls.Count(c => c.Action == "Defer"), "profiles wait for their import job");
        Assert.AreEqual(nameof(DeadLetterReason.InvalidEvent), calls.Single(c => c.MessageId == "invalid").Reason);
        Assert.AreEqual(nameof(DeadLetterReason.MalformedMessage), calls.Single(c => c.MessageId == "malformed").Reason);
        var trackers = host.Queue.Scheduled.Where(s => s.Event.Subject == RelayMessage.ImportJobSubject).ToList();
        Assert.HasCount(2, trackers, "one tracker per job, queued before its messages were deferred");
        Assert.IsTrue(trackers.All(t => t.At > host.Time!.GetUtcNow() - TimeSpan.FromMinutes(1)));
        klaviyo.AssertNoUnexpectedCalls();
    }

    [TestMethod]
    public async Task Tracker_JobCompleteWithTwoOf500ProfilesFailing_ExactlyThoseDeadLetteredWithKlaviyosDetailTheRestCompleted()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(ImportPath, 202, JobAnswer("job-500", "queued"))
            .AnswerGet($"{ImportPath}/job-500", 200, JobAnswer("job-500", "complete", failed: 2))
            .AnswerGet($"{ImportPath}/job-500/import-errors", 200, ImportErrors((17, "Invalid email for profile 17"), (342, "Phone number is not valid")));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var batch = Profiles(500);
        var actions = new RecordingMessageActions();
        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. batch], actions, TestContext.CancellationToken);
        Assert.AreEqual(500, actions.Calls.Count(c => c.Action == "Defer"));
        var receiver = new RecordingReceiver();
        receiver.Hold(actions.Deferred);

        var tracker = host.Queue.Scheduled.Single(s => s.Event.Subject == RelayMessage.ImportJobSubject).Event;
        var trackerActions = new RecordingMessageActions();
        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(tracker)], trackerActions, TestContext.CancellationToken);

        Assert.AreEqual("Complete", trackerActions.Calls.Single().Action, "the tracker is done");
        var dead = receiver.Calls.Where(c => c.Action == "DeadLetter").OrderBy(c => c.MessageId, StringComparer.Ordinal).ToList();
        Assert.AreEqual("p-17,p-342", string.Join(",", dead.Select(d => d.MessageId)));
        Assert.IsTrue(dead.All(d => d.Reason == nameof(DeadLetterReason.KlaviyoRejected)));
        Assert.Contains("Invalid email for profile 17", dead[0].Description!);
        Assert.Contains("Phone number is not valid", dead[1].Description!);
        Assert.AreEqual(498, receiver.Calls.Count(c => c.Action == "Complete"));
        Assert.AreEqual(0, receiver.StillDeferred);
        Assert.ContainsSingle(p => p == ImportPath, klaviyo.ReceivedPaths, "one call for 500 profiles");
        Assert.DoesNotContain(RelayTestHost.ApiKey, string.Join("\n", dead.Select(d => d.Description)));
    }

    [TestMethod]
    public async Task Tracker_JobCancelled_EveryMessageRetriedAsItsNextAttempt()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(ImportPath, 202, JobAnswer("job-c", "queued"))
            .AnswerGet($"{ImportPath}/job-c", 200, JobAnswer("job-c", "cancelled"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();
        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. Profiles(10, attempt: 2)], actions, TestContext.CancellationToken);
        var receiver = new RecordingReceiver();
        receiver.Hold(actions.Deferred);
        var tracker = host.Queue.Scheduled.Single(s => s.Event.Subject == RelayMessage.ImportJobSubject).Event;

        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(tracker)], new RecordingMessageActions(), TestContext.CancellationToken);

        var copies = host.Queue.Scheduled.Where(s => s.Event.Subject == "identify").ToList();
        Assert.HasCount(10, copies, "each message scheduled again");
        Assert.IsTrue(copies.All(c => c.Event.Attempt == 3), "as its next attempt");
        Assert.AreEqual(10, receiver.Calls.Count(c => c.Action == "Complete"), "the deferred originals completed once their copies exist");
        Assert.DoesNotContain(c => c.Action == "DeadLetter", receiver.Calls);
    }

    [TestMethod]
    public async Task Tracker_JobStillRunning_NextPollQueuedAndNoMessageSettled()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(ImportPath, 202, JobAnswer("job-r", "queued"))
            .AnswerGet($"{ImportPath}/job-r", 200, JobAnswer("job-r", "processing"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();
        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. Profiles(10)], actions, TestContext.CancellationToken);
        var receiver = new RecordingReceiver();
        receiver.Hold(actions.Deferred);
        var (first, due) = host.Queue.Scheduled.Single(s => s.Event.Subject == RelayMessage.ImportJobSubject);
        Assert.AreEqual(host.Time!.GetUtcNow() + ImportJobTracker.FirstPoll, due, "first asked once the batch that deferred the messages has settled");
        host.Time.Advance(ImportJobTracker.FirstPoll);
        var trackerActions = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(first)], trackerActions, TestContext.CancellationToken);

        var trackers = host.Queue.Scheduled.Where(s => s.Event.Subject == RelayMessage.ImportJobSubject).ToList();
        Assert.HasCount(2, trackers, "the next poll is queued");
        Assert.AreNotEqual(trackers[0].Event.MessageId, trackers[1].Event.MessageId, "with an id of its own, so duplicate detection keeps it");
        Assert.IsGreaterThan(trackers[0].At, trackers[1].At);
        Assert.AreEqual("Complete", trackerActions.Calls.Single().Action);
        Assert.IsEmpty(receiver.Calls, "nothing settled while the job runs");
        Assert.AreEqual(10, receiver.StillDeferred);
    }

    [TestMethod]
    public async Task Tracker_SomeMessagesAlreadySettled_SettlesTheOthersAndCompletes()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(ImportPath, 202, JobAnswer("job-s", "queued"))
            .AnswerGet($"{ImportPath}/job-s", 200, JobAnswer("job-s", "complete"))
            .AnswerGet($"{ImportPath}/job-s/import-errors", 200, ImportErrors());
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();
        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. Profiles(10)], actions, TestContext.CancellationToken);
        var receiver = new RecordingReceiver();
        // An earlier run of this tracker settled three of them, then lost its own lock.
        receiver.Hold(actions.Deferred.Skip(3));
        var tracker = host.Queue.Scheduled.Single(s => s.Event.Subject == RelayMessage.ImportJobSubject).Event;
        var trackerActions = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(tracker)], trackerActions, TestContext.CancellationToken);

        Assert.AreEqual(7, receiver.Calls.Count(c => c.Action == "Complete"));
        Assert.AreEqual(0, receiver.StillDeferred);
        Assert.AreEqual("Complete", trackerActions.Calls.Single().Action);
    }

    [TestMethod]
    public async Task Tracker_MalformedJobStatus_RetriesTheMessagesAndNeverCompletesThem()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(ImportPath, 202, JobAnswer("job-m", "queued"))
            .AnswerGet($"{ImportPath}/job-m", 200, "{\"data\":{\"attributes\":{\"status\":42}}}");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();
        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. Profiles(10)], actions, TestContext.CancellationToken);
        var receiver = new RecordingReceiver();
        receiver.Hold(actions.Deferred);
        var tracker = host.Queue.Scheduled.Single(s => s.Event.Subject == RelayMessage.ImportJobSubject).Event;

        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(tracker)], new RecordingMessageActions(), TestContext.CancellationToken);

        var copies = host.Queue.Scheduled.Where(s => s.Event.Subject == "identify").ToList();
        Assert.HasCount(10, copies, "each message retried as a copy");
        Assert.IsTrue(copies.All(c => c.Event.Attempt == 2));
        Assert.AreEqual(10, receiver.Calls.Count(c => c.Action == "Complete"), "only once its copy exists");
    }

    [TestMethod]
    public async Task Tracker_BodyThatIsNotATicket_DeadLetteredMalformedMessageWithoutCallingKlaviyo()
    {
        using var klaviyo = FakeKlaviyo.Start();
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var actions = new RecordingMessageActions();

        await new RelayFunction(host.Settler, host.Queue).RunAsync([RelayTestHost.Message("{\"jobId\":7}", "\u001Fjob-x\u001Fpoll-1", subject: RelayMessage.ImportJobSubject)], actions, TestContext.CancellationToken);

        var dead = actions.Calls.Single();
        Assert.AreEqual("DeadLetter", dead.Action);
        Assert.AreEqual(nameof(DeadLetterReason.MalformedMessage), dead.Reason);
        Assert.StartsWith("import job tracker: ", dead.Description!);
        Assert.IsEmpty(klaviyo.Received);
    }

    [TestMethod]
    public async Task Tracker_JobWhoseSubscribersRetryBeforeItStarted_ReadByItsOwnReaderAndEveryParkedMessageSettled()
    {
        // Klaviyo refuses the subscription call for now (the overload that stranded trackers): its messages retry as a
        // whole before the import job starts, so half the job's profiles carry no parked message.
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/profile-subscription-bulk-create-jobs", 503)
            .Answer(ImportPath, 202, JobAnswer("job-half", "queued"))
            .AnswerGet($"{ImportPath}/job-half", 200, JobAnswer("job-half", "complete"))
            .AnswerGet($"{ImportPath}/job-half/import-errors", 200, ImportErrors());
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var batch = new List<ServiceBusReceivedMessage>();
        batch.AddRange(Enumerable.Range(0, 10).Select(i => Identify($"s-{i}", $"s-{i}", "{\"email\":\"s" + i + "@example.com\",\"properties\":{\"listId\":\"L2\",\"subscribe\":true,\"consent\":\"email\"}}")));
        batch.AddRange(Profiles(10));
        var actions = new RecordingMessageActions();
        await new RelayFunction(host.Settler, host.Queue).RunAsync([.. batch], actions, TestContext.CancellationToken);
        Assert.AreEqual(10, actions.Calls.Count(c => c.Action == "Defer"), "the plain profiles wait for the job");
        Assert.AreEqual(10, host.Queue.Scheduled.Count(s => s.Event.Subject == "identify"), "the subscribers retry");
        var receiver = new RecordingReceiver();
        receiver.Hold(actions.Deferred);
        var tracker = host.Queue.Scheduled.Single(s => s.Event.Subject == RelayMessage.ImportJobSubject).Event;
        Assert.IsTrue(global::Klaviyo.Functions.Bulk.JobTicket.TryParse(tracker.Body.Span, out _, out var error), error);

        var trackerActions = new RecordingMessageActions();
        await new RelayFunction(host.Settler, host.Queue, () => receiver).RunAsync([AsReceived(tracker)], trackerActions, TestContext.CancellationToken);

        Assert.AreEqual("Complete", trackerActions.Calls.Single().Action, "the tracker is read and done");
        Assert.AreEqual(10, receiver.Calls.Count(c => c.Action == "Complete"));
        Assert.AreEqual(0, receiver.StillDeferred, "nothing left parked");
    }

    [TestMethod]
    public async Task Gathering_PartFullCallParkedUnderAMarker_NextBatchFillsTheCallAndTheMarkerFlushesTheRest()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/event-bulk-create-jobs", 202).Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var receiver = new RecordingReceiver();
        var parking = new GatheredParking(Microsoft.Extensions.Options.Options.Create(new global::Klaviyo.Functions.Settings.RelayOptions()));
        RelayFunction Function() => new(host.Settler, host.Queue, () => receiver, time: host.Time, parking: parking);
        int EventsIn(ReceivedRequest request) => JsonNode.Parse(request.Body)!["data"]!["attributes"]!["events-bulk-create"]!["data"]!.AsArray().Count;

        // 500 events: a part-full call, so they wait, parked under a marker due when their window ends.
        var first = new RecordingMessageActions();
        await Function().RunAsync([.. Enumerable.Range(0, 500).Select(i => Track($"a-{i}", $"a-{i}"))], first, TestContext.CancellationToken);
        Assert.IsEmpty(klaviyo.Received);
        Assert.AreEqual(500, first.Calls.Count(c => c.Action == "Defer"));
        Assert.IsTrue(first.DeferredWith.All(p => p!.ContainsKey(ServiceBusSettlement.GatheredAtProperty)));
        var (marker, due) = host.Queue.Scheduled.Single(s => s.Event.Subject == RelayMessage.GatheredSubject);
        Assert.AreEqual(host.Time!.GetUtcNow() + TimeSpan.FromSeconds(1), due);
        receiver.Hold(first.Deferred);

        // The next batch takes them back: 1,100 events, one full call; the last 100 wait under a marker of their own.
        var second = new RecordingMessageActions();
        await Function().RunAsync([.. Enumerable.Range(0, 600).Select(i => Track($"b-{i}", $"b-{i}"))], second, TestContext.CancellationToken);
        Assert.AreEqual("1000", string.Join(",", klaviyo.Received.Select(EventsIn)));
        Assert.AreEqual(100, second.Calls.Count(c => c.Action == "Defer") + receiver.Calls.Count(c => c.Action == "Defer"));
        receiver.Hold(second.Deferred);

        // Nothing else arrives here: the markers come due, on another instance (or after a restart), and flush what is
        // still parked, part-full or not.
        host.Time.Advance(TimeSpan.FromSeconds(1));
        var markers = host.Queue.Scheduled.Where(s => s.Event.Subject == RelayMessage.GatheredSubject).Select(s => AsReceived(s.Event)).ToList();
        Assert.HasCount(2, markers);
        var flushing = new RecordingMessageActions();
        var otherInstance = new GatheredParking(Microsoft.Extensions.Options.Options.Create(new global::Klaviyo.Functions.Settings.RelayOptions()));
        await new RelayFunction(host.Settler, host.Queue, () => receiver, time: host.Time, parking: otherInstance).RunAsync([.. markers], flushing, TestContext.CancellationToken);

        Assert.AreEqual("1000,100", string.Join(",", klaviyo.Received.Select(EventsIn)));
        Assert.AreEqual(2, flushing.Calls.Count(c => c.Action == "Complete"), "both markers done");
        var completed = first.Calls.Concat(second.Calls).Concat(receiver.Calls).Where(c => c.Action == "Complete").Select(c => c.MessageId).ToHashSet();
        Assert.HasCount(1100, completed, "every event completed once it was delivered");
        Assert.AreEqual(1100, first.Calls.Concat(second.Calls).Concat(receiver.Calls).Count(c => c.Action == "Complete"), "and only once");
        Assert.StartsWith("[", System.Text.Encoding.UTF8.GetString(marker.Body.Span));

        // The first instance's next batch finds them settled: nothing is sent twice.
        await Function().RunAsync([Track("c-0", "c-0")], new RecordingMessageActions(), TestContext.CancellationToken);
        Assert.AreEqual("1000,100", string.Join(",", klaviyo.Received.Where(r => r.Path == "/api/event-bulk-create-jobs").Select(EventsIn)));
    }
}
