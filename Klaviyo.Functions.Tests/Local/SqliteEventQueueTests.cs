using System.Globalization;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Local;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.Local;

[TestClass]
public sealed class SqliteEventQueueTests
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(1);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-28T12:00:00Z", CultureInfo.InvariantCulture));
    private string _directory = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Initialize() => _directory = Directory.CreateTempSubdirectory("klaviyo-sqlite-").FullName;

    [TestCleanup]
    public void Cleanup()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private LocalOptions Options(long maxBacklog = 1000) => new()
    {
        DatabasePath = Path.Combine(_directory, "relay.db"),
        DeadLetterPath = Path.Combine(_directory, "dead-letters.jsonl"),
        MaxBacklog = maxBacklog,
    };

    private SqliteEventQueue Open(long maxBacklog = 1000) => SqliteEventQueue.Open(Options(maxBacklog), _time);

    private static QueuedEvent Event(string id) => new(id, "track", Encoding.UTF8.GetBytes($$"""{"type":"track","messageId":"{{id}}","userId":"u1","event":"Signed Up"}"""));

    [TestMethod]
    public async Task LeaseTrackers_DueBehindALargeReadyBacklog_AreHandedOutAtOnceAndNeverInTheEventLane()
    {
        using var queue = Open(maxBacklog: 10_000);
        await queue.SendAsync([.. Enumerable.Range(0, 5_000).Select(i => Event($"m-{i}"))], TestContext.CancellationToken);
        var tracker = new QueuedEvent("import-job-1", RelayMessage.ImportJobSubject, "{}"u8.ToArray(), 1, "import-job:1");
        await queue.ScheduleAsync(tracker, _time.GetUtcNow() + TimeSpan.FromSeconds(21), TestContext.CancellationToken);
        _time.Advance(TimeSpan.FromSeconds(22));

        var byDueTime = await queue.LeaseAsync(1_000, Lease);
        var trackers = await queue.LeaseTrackersAsync(50, Lease);
        var events = await queue.LeaseEventsAsync(5_000, Lease);

        Assert.DoesNotContain(RelayMessage.ImportJobSubject, byDueTime.Select(e => e.Subject), "by due time the tracker waits behind the backlog");
        Assert.AreEqual("import-job-1", trackers.Single().MessageId, "its own lane hands it out at once");
        Assert.HasCount(4_000, events);
        Assert.DoesNotContain(RelayMessage.ImportJobSubject, events.Select(e => e.Subject));
        Assert.IsEmpty(await queue.LeaseTrackersAsync(50, Lease), "a leased tracker is not handed out twice");
    }

    [TestMethod]
    public async Task Send_SameMessageIdWithinTheWindow_IsQueuedOnceAndAgainAfterIt()
    {
        using var queue = Open();

        await queue.SendAsync([Event("m-1"), Event("m-2")], TestContext.CancellationToken);
        await queue.SendAsync([Event("m-1")], TestContext.CancellationToken);
        _time.Advance(TimeSpan.FromMinutes(9));
        await queue.SendAsync([Event("m-1"), Event("m-1")], TestContext.CancellationToken);
        Assert.AreEqual(2, queue.Counts().Ready, "re-sent within the 10-minute window: answered, not queued twice");

        _time.Advance(TimeSpan.FromMinutes(1.5));
        await queue.PruneDuplicatesAsync();
        await queue.SendAsync([Event("m-1")], TestContext.CancellationToken);
        Assert.AreEqual(3, queue.Counts().Ready, "after the window the same messageId is a new event");
    }

    [TestMethod]
    public async Task Lease_NotSettledBeforeItLapses_IsHandedOutAgainAndTheStaleHolderCannotSettle()
    {
        using var queue = Open();
        await queue.SendAsync([Event("m-1"), Event("m-2"), Event("m-3")], TestContext.CancellationToken);

        var first = await queue.LeaseAsync(2, Lease);
        Assert.AreSequenceEqual(["m-1", "m-2"], first.Select(e => e.MessageId));
        Assert.IsEmpty((await queue.LeaseAsync(5, Lease)).Where(e => e.MessageId != "m-3"), "leased events are not handed out twice");
        Assert.AreEqual(3, queue.Counts().Leased);

        _time.Advance(Lease + TimeSpan.FromSeconds(1));
        var again = await queue.LeaseAsync(5, Lease);
        Assert.AreSequenceEqual(["m-1", "m-2", "m-3"], again.Select(e => e.MessageId).Order());

        Assert.AreEqual(0, await queue.CompleteAsync(first), "the lapsed lease no longer settles");
        Assert.AreEqual(3, await queue.CompleteAsync(again));
        Assert.AreEqual(new BacklogCounts(0, 0, 0, 0, 0), queue.Counts());
    }

    [TestMethod]
    public async Task Retry_AcrossARestart_ComesDueAtItsTimeAsTheNextAttemptUnderTheCopyId()
    {
        using (var queue = Open())
        {
            await queue.SendAsync([Event("m-1")], TestContext.CancellationToken);
            var leased = await queue.LeaseAsync(1, Lease);
            Assert.AreEqual(1, await queue.RetryAsync(leased, 2, _time.GetUtcNow().AddMinutes(2)));
            Assert.AreEqual(1, queue.Counts().Scheduled);
        }

        using var reopened = Open();
        Assert.AreEqual(new BacklogCounts(0, 1, 0, 0, 0), reopened.Counts());
        _time.Advance(TimeSpan.FromSeconds(119));
        Assert.IsEmpty(await reopened.LeaseAsync(1, Lease));
        _time.Advance(TimeSpan.FromSeconds(1));
        var due = (await reopened.LeaseAsync(1, Lease)).Single();
        Assert.AreEqual(2, due.Attempt);
        Assert.AreEqual(RelayMessage.RetryMessageId("m-1", 2), due.MessageId);
        Assert.AreEqual("m-1", due.EventMessageId);
    }

    [TestMethod]
    public async Task Send_BeyondMaxBacklog_RefusesTheWholeRequestWithQueueUnavailable()
    {
        using var queue = Open(maxBacklog: 3);
        await queue.SendAsync([Event("m-1"), Event("m-2")], TestContext.CancellationToken);

        var refused = await Assert.ThrowsExactlyAsync<BacklogFullException>(() => queue.SendAsync([Event("m-3"), Event("m-4")], TestContext.CancellationToken));

        Assert.IsInstanceOfType<QueueUnavailableException>(refused);
        Assert.Contains("Local__MaxBacklog", refused.Message);
        Assert.AreEqual(2, queue.Counts().Ready, "nothing of the refused request was queued");
        await queue.SendAsync([Event("m-3")], TestContext.CancellationToken);
        Assert.AreEqual(3, queue.Counts().Ready);
    }

    [TestMethod]
    public async Task Send_ManyAtOnce_GroupCommittedAndARefusedOneDoesNotUndoTheOthers()
    {
        using var queue = Open(maxBacklog: 5);

        var sends = Enumerable.Range(0, 10).Select(i => queue.SendAsync([Event($"a{i}"), Event($"b{i}")], TestContext.CancellationToken)).ToList();
        var accepted = await Task.WhenAll(sends.Select(async send =>
        {
            try
            {
                await send;
                return true;
            }
            catch (BacklogFullException)
            {
                return false;
            }
        }));

        Assert.AreEqual(2, accepted.Count(a => a));
        Assert.AreEqual(4, queue.Counts().Ready, "two requests of two events each: the rest refused whole");
    }

    [TestMethod]
    public async Task Send_WhenTheDiskIsFull_ThrowsQueueUnavailableAndStoresNothing()
    {
        using var queue = Open();
        await queue.SendAsync([Event("m-0")], TestContext.CancellationToken);
        queue.LimitPages(queue.PageCount());

        var big = new QueuedEvent("m-big", "track", new byte[64 * 1024]);
        await Assert.ThrowsExactlyAsync<LocalQueueWriteException>(() => queue.SendAsync([Event("m-1"), big], TestContext.CancellationToken));

        Assert.AreEqual(1, queue.Counts().Ready);
    }

    /// <summary>Issue 18 item 7: below the free-space floor the ingest's sends are refused (503), while leasing and
    /// settling, which need writes too, keep draining what the queue holds.</summary>
    [TestMethod]
    public async Task Send_BelowTheFreeDiskFloor_IsRefusedNamingTheSetting_WhileLeasesAndSettlementsGoOn()
    {
        using (var before = Open())
        {
            await before.SendAsync([Event("m-1"), Event("m-2")], TestContext.CancellationToken);
        }
        var options = Options();
        options.MinFreeDiskBytes = 1L << 40; // 1 TB: more than this disk has free
        using var queue = SqliteEventQueue.Open(options, _time);

        var refused = await Assert.ThrowsExactlyAsync<DiskFloorException>(() => queue.SendAsync([Event("m-3")], TestContext.CancellationToken));

        Assert.IsInstanceOfType<QueueUnavailableException>(refused, "the ingest answers 503 with Retry-After");
        Assert.Contains("below Local__MinFreeDiskBytes (1099511627776)", refused.Message);
        var leased = await queue.LeaseAsync(10, Lease);
        Assert.HasCount(2, leased);
        Assert.AreEqual(1, await queue.CompleteAsync([leased[0]]));
        Assert.HasCount(1, await queue.DeadLetterAsync([leased[1]], "InvalidEvent", "test"));
        Assert.AreEqual(0, queue.Counts().Waiting);
        Assert.AreEqual(1, queue.Counts().DeadLettered);
    }

    [TestMethod]
    public async Task Send_WithTheFloorOff_IsTaken()
    {
        var options = Options();
        options.MinFreeDiskBytes = 0;
        using var queue = SqliteEventQueue.Open(options, _time);

        await queue.SendAsync([Event("m-1")], TestContext.CancellationToken);

        Assert.AreEqual(1, queue.Counts().Ready);
    }

    [TestMethod]
    public void Open_PathThatCannotBeCreated_FailsNamingTheSetting()
    {
        var blocker = Path.Combine(_directory, "a-file");
        File.WriteAllText(blocker, "");
        var options = Options();
        options.DatabasePath = Path.Combine(blocker, "relay.db");

        var failure = Assert.ThrowsExactly<LocalStartupException>(() => SqliteEventQueue.Open(options, _time));

        Assert.StartsWith("Local__DatabasePath", failure.Message);
    }

    [TestMethod]
    public void Open_WhileAnotherQueueOwnsTheDatabase_FailsNamingTheSettingAndTheOwner()
    {
        using var owner = Open();

        var failure = Assert.ThrowsExactly<LocalStartupException>(() => Open());

        Assert.StartsWith("Local__DatabasePath", failure.Message);
        Assert.Contains("another relay process holds", failure.Message);
    }

    /// <summary>Issue 18 item 8: the lock used to be a file beside the database; deleting it let a second relay lock a
    /// new file of the same name and share the database.</summary>
    [TestMethod]
    public void Open_AfterTheLockFileBesideTheDatabaseIsDeleted_IsStillRefused()
    {
        using var owner = Open();
        File.Delete(Options().DatabasePath + ".lock");

        var failure = Assert.ThrowsExactly<LocalStartupException>(() => Open());

        Assert.Contains("another relay process holds", failure.Message);
    }

    [TestMethod]
    [DataRow("garbage", false)]
    [DataRow("another program's header", true)]
    public void Open_FileThatIsNotADatabase_SaysSoNotThatItIsUnwritable(string name, bool header)
    {
        var options = Options();
        var content = new byte[8192];
        new Random(7).NextBytes(content);
        if (header)
        {
            "PK\u0003\u0004 not sqlite"u8.CopyTo(content);
        }
        File.WriteAllBytes(options.DatabasePath, content);

        var failure = Assert.ThrowsExactly<LocalStartupException>(() => SqliteEventQueue.Open(options, _time));

        Assert.StartsWith("Local__DatabasePath", failure.Message, name);
        Assert.Contains("is not a SQLite database", failure.Message, name);
        Assert.DoesNotContain("writable", failure.Message, name);
    }

    [TestMethod]
    public async Task Open_AfterTheOwnerClosed_TakesTheDatabaseOver()
    {
        using (var first = Open())
        {
            await first.SendAsync([Event("m-1")], TestContext.CancellationToken);
        }

        using var second = Open();

        Assert.AreEqual(1, second.Counts().Ready);
    }

    [TestMethod]
    public async Task Open_LeasesLeftByAnEndedProcess_AreHandedOutAtOnceWithTheSameAttempt()
    {
        using (var crashed = Open())
        {
            await crashed.SendAsync([Event("m-1"), Event("m-2"), Event("m-3")], TestContext.CancellationToken);
            Assert.HasCount(2, await crashed.LeaseAsync(2, Lease));
            // never settled: the process "dies" holding them
        }

        using var reopened = Open();

        Assert.AreEqual(2, reopened.LeasesReleasedAtOpen);
        Assert.AreEqual(new BacklogCounts(3, 0, 0, 0, 0), reopened.Counts(), "ready again without waiting out the lease");
        var again = await reopened.LeaseAsync(5, Lease);
        Assert.AreSequenceEqual(["m-1", "m-2", "m-3"], again.Select(e => e.MessageId).Order());
        Assert.IsTrue(again.All(e => e.Attempt == 1), "a delivery cut off by the end of its process is the same attempt again");
    }

    [TestMethod]
    public async Task Open_ParkedEventsOfAnEndedProcess_StayParked()
    {
        using (var crashed = Open())
        {
            await crashed.SendAsync([Event("m-1")], TestContext.CancellationToken);
            Assert.AreEqual(1, await crashed.DeferAsync(await crashed.LeaseAsync(1, Lease)));
        }

        using var reopened = Open();

        Assert.AreEqual(0, reopened.LeasesReleasedAtOpen);
        Assert.AreEqual(new BacklogCounts(0, 0, 0, 1, 0), reopened.Counts(), "a parked event waits for whoever parked it, as a deferred Service Bus message does");
    }

    [TestMethod]
    public async Task Defer_ParkedEvent_IsNotHandedOutUntilReceivedBackAndSettled()
    {
        using var queue = Open();
        await queue.SendAsync([Event("m-1")], TestContext.CancellationToken);
        var leased = await queue.LeaseAsync(1, Lease);

        Assert.AreEqual(1, await queue.DeferAsync(leased));
        _time.Advance(Lease * 3);
        Assert.IsEmpty(await queue.LeaseAsync(5, Lease), "a parked event does not lapse back into the queue");
        Assert.AreEqual(1, queue.Counts().Deferred);

        var back = await queue.ReceiveDeferredAsync([leased[0].Sequence]);
        Assert.AreEqual(0, await queue.CompleteAsync(leased), "the parking lease was replaced");
        Assert.AreEqual(1, await queue.CompleteAsync(back));
        Assert.AreEqual(0, queue.Counts().Waiting);
    }

    [TestMethod]
    public async Task ReceiveDeferred_WhileAnEarlierTakeBackHoldsIt_RefusedLikeTheBrokerUntilTheLockRunsOut()
    {
        using var queue = Open();
        await queue.SendAsync([Event("m-1")], TestContext.CancellationToken);
        var leased = await queue.LeaseAsync(1, Lease);
        await queue.DeferAsync(leased);
        var first = await queue.ReceiveDeferredAsync([leased[0].Sequence]);
        Assert.HasCount(1, first);

        Assert.IsEmpty(await queue.ReceiveDeferredAsync([leased[0].Sequence]), "locked by the first taker: MessageNotFound on Service Bus");
        Assert.HasCount(1, queue.StillDeferred([leased[0].Sequence]), "still parked, not settled");

        _time.Advance(SqliteEventQueue.DeferredLock);
        var second = await queue.ReceiveDeferredAsync([leased[0].Sequence]);
        Assert.HasCount(1, second, "parked again once the lock ran out");
        Assert.AreEqual(0, await queue.CompleteAsync(first), "the lapsed taker can no longer settle it");
        Assert.AreEqual(1, await queue.CompleteAsync(second));
        Assert.IsEmpty(queue.StillDeferred([leased[0].Sequence]));
    }

    [TestMethod]
    public async Task Sweep_EventParkedPastTheJobWaitBound_QueuedAgainSameAttemptAndARecentOneLeftParked()
    {
        var options = Options();
        using var queue = SqliteEventQueue.Open(options, _time);
        using var file = new DeadLetterFile(options.DeadLetterPath, _time);
        var settlement = new LocalSettlement(queue, file, _time, NullLogger<LocalSettlement>.Instance, Microsoft.Extensions.Options.Options.Create(new LocalOptions()));
        var sweeper = new ParkedSweeper(_time, NullLogger<ParkedSweeper>.Instance);
        await queue.SendAsync([Event("m-old")], TestContext.CancellationToken);
        await queue.DeferAsync(await queue.LeaseAsync(1, Lease));
        _time.Advance(ParkedSweeper.OrphanAge);
        await queue.SendAsync([Event("m-new")], TestContext.CancellationToken);
        await queue.DeferAsync(await queue.LeaseAsync(1, Lease));
        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.AreEqual(1, await sweeper.SweepIfDueAsync(settlement, TestContext.CancellationToken));
        Assert.AreEqual(0, await sweeper.SweepIfDueAsync(settlement, TestContext.CancellationToken), "at most once an interval");

        Assert.AreEqual(new BacklogCounts(1, 0, 0, 1, 0), queue.Counts());
        var again = await queue.LeaseAsync(5, Lease);
        Assert.AreEqual("m-old", again.Single().EventMessageId);
        Assert.AreEqual(1, again.Single().Attempt, "the relay lost it, not Klaviyo: no attempt spent");
    }

    [TestMethod]
    public async Task DeadLetters_AreKeptInTheDatabaseAndWrittenAsStrictJsonLinesWithoutABom()
    {
        var options = Options();
        using var queue = SqliteEventQueue.Open(options, _time);
        using var file = new DeadLetterFile(options.DeadLetterPath, _time);
        var settlement = new LocalSettlement(queue, file, _time, NullLogger<LocalSettlement>.Instance, Microsoft.Extensions.Options.Options.Create(new LocalOptions()));
        await queue.SendAsync([Event("m-1"), Event("m-2\u2028é")], TestContext.CancellationToken);

        var leased = await queue.LeaseAsync(2, Lease);
        await settlement.DeadLetterAsync([leased[0]], "KlaviyoRejected", "POST /api/events answered 400: \"bad\"\nline", TestContext.CancellationToken);
        await settlement.DeadLetterAsync([leased[1]], "InvalidEvent", null, TestContext.CancellationToken);

        Assert.AreEqual(2, queue.Counts().DeadLettered);
        var bytes = await File.ReadAllBytesAsync(options.DeadLetterPath, TestContext.CancellationToken);
        Assert.AreEqual((byte)'{', bytes[0], "no byte-order mark");
        var lines = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes).Split('\n');
        Assert.AreEqual("", lines[^1], "every line ends with a newline");
        var parsed = lines[..^1].Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.AreSequenceEqual(["m-1", "m-2\u2028é"], parsed.Select(p => p.GetProperty("messageId").GetString()));
        Assert.AreEqual("POST /api/events answered 400: \"bad\"\nline", parsed[0].GetProperty("description").GetString());
        Assert.AreEqual(JsonValueKind.Null, parsed[1].GetProperty("description").ValueKind);
        Assert.AreEqual("Signed Up", parsed[0].GetProperty("event").GetProperty("event").GetString());
        Assert.AreEqual("2026-11-28T12:00:00.000Z", parsed[0].GetProperty("deadLetteredAt").GetString());
    }

    [TestMethod]
    public async Task Replay_LocalDeadLetters_MovesThemBackWithAFreshAttemptOnce()
    {
        using var host = RelayTestHost.Create("http://127.0.0.1:1");
        using var queue = Open();
        await queue.SendAsync([Event("m-1"), Event("m-2")], TestContext.CancellationToken);
        var leased = await queue.LeaseAsync(2, Lease);
        await queue.RetryAsync([leased[0]], 10, _time.GetUtcNow());
        await queue.DeadLetterAsync([leased[1]], "KlaviyoRejected", "400");
        await queue.DeadLetterAsync(await queue.LeaseAsync(1, Lease), "RetriesExhausted", "10 attempt(s) failed");
        var replayer = ActivatorUtilities.CreateInstance<DeadLetterReplayer>(host.Services, queue, (IEventQueue)queue);

        var result = await replayer.ReplayAsync(10, "RetriesExhausted", TestContext.CancellationToken);
        var again = await replayer.ReplayAsync(10, "RetriesExhausted", TestContext.CancellationToken);

        Assert.AreSequenceEqual(["m-1"], result.Moved.Select(m => m.MessageId));
        Assert.IsEmpty(again.Moved);
        Assert.AreEqual(new BacklogCounts(1, 0, 0, 0, 1), queue.Counts());
        var replayed = (await queue.LeaseAsync(5, Lease)).Single();
        Assert.AreEqual(1, replayed.Attempt);
        Assert.AreEqual("m-1", replayed.EventMessageId);
        Assert.AreEqual(result.Moved[0].QueueMessageId, replayed.MessageId);
    }
}
