using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Tests.Relay.Ordering;

/// <summary>The Azure barrier against a fake that keeps Table storage's rules (ETags, 412 on a stale ETag): the valve,
/// stale blockers, one read per key, and two instances counting held messages at once.</summary>
[TestClass]
public sealed class TableOrderingBarrierTests
{
    private const string Key = "person-1";

    private static readonly string Partition = OrderingKeys.Hash(Key);

    public TestContext TestContext { get; set; } = null!;

    private static (RelayTestHost Host, FakeBarrierTable Table, IOrderingBarrier Barrier) Create(int? maxHeld = null)
    {
        var table = new FakeBarrierTable();
        var settings = new Dictionary<string, string?>();
        if (maxHeld is { } max)
        {
            settings["Relay:OrderingMaxHeldPerKey"] = max.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        var host = RelayTestHost.Create("http://127.0.0.1:9", settings, services => services.AddSingleton<IBarrierTable>(table));
        return (host, table, host.Services.GetRequiredService<IOrderingBarrier>());
    }

    private static OrderedMessage Message(int index, long receivedAt, string key = Key) => new(index, key, new Arrival(receivedAt, index + 100), index + 100, IsCopy: false);

    private static BarrierRow Blocker(long receivedAt, DateTimeOffset due) => new(Partition, TableOrderingBarrier.BlockerPrefix + new Arrival(receivedAt, 1).RowKey, due);

    [TestMethod]
    public async Task ValveOpensWhenMoreThanTheLimitAreHeld_WithAWarningAndAMetric()
    {
        var (host, table, barrier) = Create();
        using var _ = host;
        using var valves = new MetricCollector<long>(host.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(), RelayMetrics.MeterName, RelayMetrics.OrderingValveOpenedName);
        var now = host.Time!.GetUtcNow();
        table.Put(Blocker(1, now + TimeSpan.FromMinutes(2)));

        var first = await barrier.CheckAsync(Enumerable.Range(0, 200).Select(i => Message(i, 10 + i)).ToList(), TestContext.CancellationToken);
        Assert.HasCount(200, first.Held, "200 held: at the limit, ordering holds");
        Assert.IsEmpty(valves.GetMeasurementSnapshot());

        var second = await barrier.CheckAsync([Message(500, 1000)], TestContext.CancellationToken);
        Assert.IsEmpty(second.Held, "the 201st held message opens the valve: the key's messages go");
        Assert.HasCount(1, valves.GetMeasurementSnapshot());
        var warning = host.Logs.GetSnapshot().Single(r => r.Id.Id == 3301);
        Assert.AreEqual(LogLevel.Warning, warning.Level);
        Assert.DoesNotContain(Key, warning.Message, "the key names a person: only its hash is logged");
        var valve = table.Rows.Single(r => r.RowKey == TableOrderingBarrier.ValveRow);
        Assert.AreEqual(now + TimeSpan.FromMinutes(20), valve.Due);

        var later = await barrier.CheckAsync([Message(501, 1001)], TestContext.CancellationToken);
        Assert.IsEmpty(later.Held, "ordering stays off for the key while the valve is open");
        host.Time.Advance(TimeSpan.FromMinutes(21));
        table.Put(Blocker(2, host.Time.GetUtcNow() + TimeSpan.FromMinutes(1)));
        var after = await barrier.CheckAsync([Message(502, 1002)], TestContext.CancellationToken);
        Assert.HasCount(1, after.Held, "20 minutes on, the key is ordered again");
    }

    [TestMethod]
    public async Task StaleBlocker_IsReleasedAndDeleted_NeverHoldsForEver()
    {
        var (host, table, barrier) = Create();
        using var _ = host;
        var now = host.Time!.GetUtcNow();
        table.Put(Blocker(1, now - TableOrderingBarrier.StaleAfter - TimeSpan.FromSeconds(1)));

        var check = await barrier.CheckAsync([Message(0, 10)], TestContext.CancellationToken);

        Assert.IsEmpty(check.Held, "a blocker whose retry should long have come was settled unheard: released");
        Assert.IsEmpty(table.Rows, "and its row deleted");
        var released = host.Logs.GetSnapshot().Count(r => r.Id.Id == 3303);
        Assert.AreEqual(1, released);
    }

    [TestMethod]
    public async Task BlockerDueLater_HoldsUntilItsDueTimeAndTheMargin_EarlierMessagesAndItsOwnCopyGo()
    {
        var (host, table, barrier) = Create();
        using var _ = host;
        var now = host.Time!.GetUtcNow();
        table.Put(Blocker(10, now + TimeSpan.FromMinutes(2)));
        var own = new OrderedMessage(1, Key, new Arrival(10, 1), 77, IsCopy: true);

        var check = await barrier.CheckAsync([Message(0, 5), own, Message(2, 20), Message(3, 30, "someone-else")], TestContext.CancellationToken);

        Assert.AreSequenceEqual(new[] { 2 }, check.Held.Keys.ToArray());
        Assert.AreEqual(TimeSpan.FromMinutes(2) + TableOrderingBarrier.HoldMargin, check.Held[2].Delay);
        Assert.AreEqual(2, table.Reads, "one read per distinct key");
    }

    [TestMethod]
    public async Task TwoInstancesCountHeldAtOnce_TheConflictIsReadAgain_NoHoldIsLost()
    {
        var (host, table, barrier) = Create();
        using var _ = host;
        var now = host.Time!.GetUtcNow();
        var row = table.Put(Blocker(1, now + TimeSpan.FromMinutes(2)));
        // Another instance counts 3 held messages between this batch's read and its write: Table storage answers 412.
        table.BeforeNextUpdate = () => table.Put(row with { Held = 3 });

        var check = await barrier.CheckAsync([Message(0, 10), Message(1, 11)], TestContext.CancellationToken);

        Assert.HasCount(2, check.Held);
        Assert.AreEqual(1, table.Conflicts);
        Assert.AreEqual(5, table.Rows.Single().Held, "3 counted elsewhere + 2 here");
    }

    [TestMethod]
    public async Task RetryRecordsABlocker_DeliveryReleasesIt_DeadLetterLeavesTheAloneMark()
    {
        var (host, table, barrier) = Create();
        using var _ = host;
        var a = Message(0, 10);
        var check = await barrier.CheckAsync([a], TestContext.CancellationToken);
        await barrier.BeforeSettleAsync(check, [new OrderedSettlement(a, new RelayOutcome.RetryLater(TimeSpan.FromSeconds(30), 2, "503"), Held: false)], TestContext.CancellationToken);
        Assert.AreEqual(TableOrderingBarrier.BlockerPrefix + a.Arrival.RowKey, table.Rows.Single().RowKey);

        var copy = a with { IsCopy = true, Sequence = 999 };
        var again = await barrier.CheckAsync([copy, Message(1, 20), Message(2, 30)], TestContext.CancellationToken);
        Assert.AreSequenceEqual(new[] { 1, 2 }, again.Held.Keys.Order().ToArray());
        await barrier.AfterSettleAsync(again, [new OrderedSettlement(copy, new RelayOutcome.DeadLetter(DeadLetterReason.KlaviyoRejected, "400"), Held: false)], TestContext.CancellationToken);
        Assert.AreEqual(TableOrderingBarrier.AloneRow, table.Rows.Single().RowKey, "the blocker is released; the alone mark is left");

        var next = await barrier.CheckAsync([Message(1, 20), Message(2, 30)], TestContext.CancellationToken);
        Assert.AreSequenceEqual(new[] { 2 }, next.Held.Keys.ToArray(), "after a dead letter the next goes first, alone");
        await barrier.AfterSettleAsync(next, [new OrderedSettlement(Message(1, 20), new RelayOutcome.Delivered(1), Held: false)], TestContext.CancellationToken);
        Assert.IsEmpty(table.Rows, "the alone message delivered: the mark has done its work");
    }
}
