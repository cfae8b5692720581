using System.Globalization;
using System.Text;
using Klaviyo.Functions.Local;
using Klaviyo.Functions.Queue;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.Local;

/// <summary>Issue 20 in the local queue: the barrier is kept at lease time, in the database that schedules and settles,
/// so a held event is simply not leased (no attempt, no put-off).</summary>
[TestClass]
public sealed class SqliteOrderingTests
{
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(1);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-12-07T12:00:00Z", CultureInfo.InvariantCulture));
    private readonly List<(string Key, long Held)> _valves = [];
    private string _directory = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void Initialize() => _directory = Directory.CreateTempSubdirectory("klaviyo-ordering-").FullName;

    [TestCleanup]
    public void Cleanup()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    private string DatabasePath => Path.Combine(_directory, "relay.db");

    private SqliteEventQueue Open(bool ordering = true, int maxHeld = 200) => SqliteEventQueue.Open(
        new LocalOptions { DatabasePath = DatabasePath, DeadLetterPath = Path.Combine(_directory, "dead.jsonl") },
        _time,
        new LocalOrdering(ordering, maxHeld, TimeSpan.FromMinutes(20), (key, held) => _valves.Add((key, held))));

    private static QueuedEvent Identify(string id, string key = "person-1") =>
        new(id, "identify", Encoding.UTF8.GetBytes($$"""{"type":"identify","messageId":"{{id}}","userId":"{{key}}"}"""), Ordering: new OrderingStamp(key, 0));

    private static QueuedEvent Track(string id) => new(id, "track", Encoding.UTF8.GetBytes($$"""{"type":"track","messageId":"{{id}}","userId":"person-1","event":"x"}"""));

    private async Task<LeasedEvent> FailOnceAsync(SqliteEventQueue queue, string id)
    {
        var leased = (await queue.LeaseAsync(10, Lease)).Single(e => e.EventMessageId == id);
        Assert.AreEqual(1, await queue.RetryAsync([leased], 2, _time.GetUtcNow() + TimeSpan.FromSeconds(30)));
        return leased;
    }

    [TestMethod]
    public async Task LaterOrderedEventOfTheKey_IsNotLeasedWhileTheEarlierWaitsForItsRetry_TrackAndOtherKeysAre()
    {
        using var queue = Open();
        await queue.SendAsync([Identify("a")], TestContext.CancellationToken);
        await FailOnceAsync(queue, "a");

        await queue.SendAsync([Identify("b"), Track("t"), Identify("x", "someone-else")], TestContext.CancellationToken);
        var leased = await queue.LeaseAsync(10, Lease);
        Assert.AreSequenceEqual(new[] { "t", "x" }, leased.Select(e => e.EventMessageId).Order().ToArray(), "b waits behind a; the track and another person go");
        Assert.AreEqual(0, leased.Single(e => e.EventMessageId == "x").Attempt - 1);

        _time.Advance(TimeSpan.FromSeconds(31));
        var retry = await queue.LeaseAsync(10, Lease);
        Assert.AreSequenceEqual(new[] { "a" }, retry.Select(e => e.EventMessageId).ToArray(), "a's retry is leased; b still waits while a is in flight");
        Assert.AreEqual(1, await queue.CompleteAsync(retry));

        var after = await queue.LeaseAsync(10, Lease);
        Assert.AreSequenceEqual(new[] { "b" }, after.Select(e => e.EventMessageId).ToArray());
        Assert.AreEqual(1, after[0].Attempt, "held without spending an attempt");
        Assert.AreEqual("person-1", after[0].OrderingKey);
    }

    [TestMethod]
    public async Task EarlierEventInFlightOrParked_ThatNeverFailed_HoldsNothing()
    {
        using var queue = Open();
        await queue.SendAsync([Identify("a")], TestContext.CancellationToken);
        var a = await queue.LeaseAsync(10, Lease);
        await queue.SendAsync([Identify("b")], TestContext.CancellationToken);
        Assert.AreSequenceEqual(new[] { "b" }, (await queue.LeaseAsync(10, Lease)).Select(e => e.EventMessageId).ToArray(), "a first attempt in flight is not waiting for a retry");

        Assert.AreEqual(1, await queue.DeferAsync(a));
        await queue.SendAsync([Identify("c")], TestContext.CancellationToken);
        Assert.AreSequenceEqual(new[] { "c" }, (await queue.LeaseAsync(10, Lease)).Select(e => e.EventMessageId).ToArray(), "nor one parked for its import job");
    }

    [TestMethod]
    public async Task AfterADeadLetter_TheNextGoesFirstAlone_ThenTheRest()
    {
        using var queue = Open();
        await queue.SendAsync([Identify("a")], TestContext.CancellationToken);
        var a = await FailOnceAsync(queue, "a");
        await queue.SendAsync([Identify("b"), Identify("c")], TestContext.CancellationToken);
        _time.Advance(TimeSpan.FromSeconds(31));
        var retry = (await queue.LeaseAsync(10, Lease)).Single();
        Assert.HasCount(1, await queue.DeadLetterAsync([retry], "KlaviyoRejected", "400"));

        var alone = await queue.LeaseAsync(10, Lease);
        Assert.AreSequenceEqual(new[] { "b" }, alone.Select(e => e.EventMessageId).ToArray(), "b goes first, alone");
        Assert.AreEqual(1, await queue.CompleteAsync(alone));
        var rest = await queue.LeaseAsync(10, Lease);
        Assert.AreSequenceEqual(new[] { "c" }, rest.Select(e => e.EventMessageId).ToArray());
        _ = a;
    }

    [TestMethod]
    public async Task ReadyEventsOfOneKey_AreLeasedTogether_AndAnEarlierOneThatDidNotFitHoldsTheLaterOnes()
    {
        using var queue = Open();
        await queue.SendAsync([Identify("a"), Identify("b")], TestContext.CancellationToken);
        var both = await queue.LeaseAsync(10, Lease);
        Assert.AreSequenceEqual(new[] { "a", "b" }, both.Select(e => e.EventMessageId).ToArray(), "nothing waits for a retry: one batch merges them (spec 8.3)");
        Assert.AreEqual(2, await queue.CompleteAsync(both));

        // c's lease lapses (its process died) before d, queued meanwhile, was leased: d sorts first by due time, but
        // goes only with c.
        await queue.SendAsync([Identify("c")], TestContext.CancellationToken);
        Assert.HasCount(1, await queue.LeaseAsync(10, Lease));
        _time.Advance(TimeSpan.FromSeconds(1));
        await queue.SendAsync([Identify("d")], TestContext.CancellationToken);
        _time.Advance(Lease);
        Assert.IsEmpty(await queue.LeaseAsync(1, Lease), "d fits the lease, c does not: d stays for the next");
        var together = await queue.LeaseAsync(10, Lease);
        Assert.AreSequenceEqual(new[] { "c", "d" }, together.Select(e => e.EventMessageId).Order().ToArray(), "one batch: spec 8.3 merges them in event-time order");
    }

    [TestMethod]
    public async Task MoreThanTheLimitHeld_OpensTheValveForTheKey_TheyAreLeased()
    {
        using var queue = Open();
        await queue.SendAsync([Identify("a")], TestContext.CancellationToken);
        await FailOnceAsync(queue, "a");

        await queue.SendAsync([.. Enumerable.Range(0, 200).Select(i => Identify($"h-{i}"))], TestContext.CancellationToken);
        Assert.IsEmpty(_valves, "200 held: at the limit");
        Assert.IsEmpty(await queue.LeaseAsync(500, Lease));

        await queue.SendAsync([Identify("h-200")], TestContext.CancellationToken);
        Assert.HasCount(1, _valves);
        Assert.AreEqual(("person-1", 201L), _valves[0]);
        Assert.HasCount(201, await queue.LeaseAsync(500, Lease), "the valve is open: ordering is off for the key");
    }

    [TestMethod]
    public async Task OrderingOff_LeasesTheLaterEventAtOnce()
    {
        using var queue = Open(ordering: false);
        await queue.SendAsync([Identify("a")], TestContext.CancellationToken);
        await FailOnceAsync(queue, "a");
        await queue.SendAsync([Identify("b")], TestContext.CancellationToken);

        Assert.AreSequenceEqual(new[] { "b" }, (await queue.LeaseAsync(10, Lease)).Select(e => e.EventMessageId).ToArray());
    }

    [TestMethod]
    public async Task DatabaseOfTheVersionBefore_GainsTheOrderingColumns_ItsEventsStillRelay()
    {
        using (var old = new SqliteConnection($"Data Source={DatabasePath};Pooling=False"))
        {
            old.Open();
            using var create = old.CreateCommand();
            create.CommandText = """
                CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, event_message_id TEXT NOT NULL,
                    subject TEXT NOT NULL, body BLOB NOT NULL, attempt INTEGER NOT NULL, state INTEGER NOT NULL, due INTEGER NOT NULL,
                    lease INTEGER, enqueued_at INTEGER NOT NULL, reason TEXT, description TEXT, dead_lettered_at INTEGER);
                INSERT INTO messages (message_id, event_message_id, subject, body, attempt, state, due, enqueued_at) VALUES ('old-1', 'old-1', 'identify', x'7B7D', 1, 0, 0, 0);
                PRAGMA user_version = 1;
                """;
            create.ExecuteNonQuery();
        }

        using var queue = Open();
        await queue.SendAsync([Identify("new-1")], TestContext.CancellationToken);
        var leased = await queue.LeaseAsync(10, Lease);
        Assert.AreSequenceEqual(new[] { "old-1", "new-1" }, leased.Select(e => e.EventMessageId).ToArray());
        Assert.IsNull(leased[0].OrderingKey, "queued before ordering: no key, never held");
    }
}
