using System.Security.Cryptography;
using System.Text;
using Klaviyo.Functions.Queue;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// Per-profile ordering (spec 10) as <see cref="RelaySettler"/> sees it: before a batch is decided, which ordered
/// messages may go to Klaviyo now and which are held (put off, no attempt spent); around settlement, which messages
/// become their key's blocker (scheduled for a retry) and which release it (delivered, skipped, dead-lettered).
/// Azure keeps the barrier in Table storage (<see cref="TableOrderingBarrier"/>); local mode keeps it in its SQLite queue,
/// where a held event is never leased at all, so its settler needs none (<see cref="NoOrderingBarrier"/>).
/// </summary>
internal interface IOrderingBarrier
{
    /// <summary>Decides the batch's ordered messages; every message left out of the answer's holds goes.</summary>
    Task<BarrierCheck> CheckAsync(IReadOnlyList<OrderedMessage> messages, CancellationToken cancellationToken);

    /// <summary>Before the batch is settled: the ordered messages about to be scheduled for a retry become blockers, so
    /// their copy is never visible before the barrier knows of it.</summary>
    Task BeforeSettleAsync(BarrierCheck check, IReadOnlyList<OrderedSettlement> settled, CancellationToken cancellationToken);

    /// <summary>After the batch is settled: the ordered messages settled for good release their key.</summary>
    Task AfterSettleAsync(BarrierCheck check, IReadOnlyList<OrderedSettlement> settled, CancellationToken cancellationToken);
}

/// <summary>An ordered message of a batch, by its key and arrival.</summary>
/// <param name="Index">Its position in the list given to <see cref="IOrderingBarrier.CheckAsync"/>.</param>
/// <param name="Sequence">The queue sequence number of this delivery (a copy's own, not its arrival's).</param>
/// <param name="IsCopy">A retry or put-off copy (its sequence number is not its arrival's): it may be a blocker itself.</param>
internal readonly record struct OrderedMessage(int Index, string Key, Arrival Arrival, long Sequence, bool IsCopy)
{
    public static OrderedMessage Of(int index, OrderingStamp stamp, long sequence) =>
        new(index, stamp.Key, new Arrival(stamp.ReceivedAtMs, stamp.Sequence ?? sequence), sequence, stamp.Sequence is { } first && first != sequence);
}

/// <summary>How an ordered message was settled.</summary>
/// <param name="Held">Put off by the barrier itself: neither a blocker nor a release.</param>
internal readonly record struct OrderedSettlement(OrderedMessage Message, RelayOutcome Outcome, bool Held);

/// <summary>Where a message arrived: the ingest's receivedAt, then the queue sequence of its original. Orders as text
/// too (<see cref="RowKey"/>), for a table's row keys.</summary>
internal readonly record struct Arrival(long ReceivedAtMs, long Sequence) : IComparable<Arrival>
{
    public int CompareTo(Arrival other) => (ReceivedAtMs, Sequence).CompareTo((other.ReceivedAtMs, other.Sequence));

    public static bool operator <(Arrival a, Arrival b) => a.CompareTo(b) < 0;

    public static bool operator >(Arrival a, Arrival b) => a.CompareTo(b) > 0;

    public static bool operator <=(Arrival a, Arrival b) => a.CompareTo(b) <= 0;

    public static bool operator >=(Arrival a, Arrival b) => a.CompareTo(b) >= 0;

    public string RowKey => $"{Math.Max(0, ReceivedAtMs):D19}-{Math.Max(0, Sequence):D19}";
}

/// <summary>What the barrier decided for a batch: the messages held (by <see cref="OrderedMessage.Index"/>) and how long
/// each is put off, plus whatever the barrier read and needs again to settle.</summary>
internal class BarrierCheck(IReadOnlyDictionary<int, HeldMessage> held)
{
    public static readonly BarrierCheck AllGo = new(new Dictionary<int, HeldMessage>());

    public IReadOnlyDictionary<int, HeldMessage> Held { get; } = held;
}

/// <summary>A held message: put off by <paramref name="Delay"/> as the same attempt.</summary>
internal readonly record struct HeldMessage(TimeSpan Delay, string Cause);

/// <summary>No barrier in the settler: ordering is off, or the queue itself holds (local mode leases no held event).</summary>
internal sealed class NoOrderingBarrier : IOrderingBarrier
{
    public Task<BarrierCheck> CheckAsync(IReadOnlyList<OrderedMessage> messages, CancellationToken cancellationToken) => Task.FromResult(BarrierCheck.AllGo);

    public Task BeforeSettleAsync(BarrierCheck check, IReadOnlyList<OrderedSettlement> settled, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task AfterSettleAsync(BarrierCheck check, IReadOnlyList<OrderedSettlement> settled, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Ordering keys name people (a user id, an email): stored and logged only as a hash.</summary>
internal static class OrderingKeys
{
    /// <summary>SHA-256 of the key in lower-case hex (64 characters): a table's partition key.</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>The start of <see cref="Hash"/>: enough to tell keys apart in a log, nothing about the person.</summary>
    public static string ForLog(string key) => Hash(key)[..16];
}
