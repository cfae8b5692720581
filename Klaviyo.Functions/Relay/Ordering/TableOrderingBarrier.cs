using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// The Azure barrier (spec 10) in Table storage, one partition per ordering key (the key's hash: no person's id is
/// stored). A batch reads each distinct key of its ordered messages once. A message later (by arrival) than a blocker
/// row of its key is held until about the blocker's retry time; the blocker's own copy goes. A row whose blocker's
/// retry should long have come (<see cref="StaleAfter"/> past its due time) is released, so a blocker settled where
/// the barrier could not hear of it never holds a key for good. After a dead letter an <c>alone</c> mark lets the next
/// message of the key go first, alone. Holding more than <c>Relay__OrderingMaxHeldPerKey</c> behind one blocker opens
/// the key's valve for 20 minutes. A key that cannot be read holds its messages: never sent unchecked.
/// </summary>
internal sealed partial class TableOrderingBarrier(
    IBarrierTable table,
    IOptions<RelayOptions> options,
    TimeProvider time,
    RelayMetrics metrics,
    ILogger<TableOrderingBarrier> logger) : IOrderingBarrier
{
    public const string BlockerPrefix = "b-";
    public const string ValveRow = "valve";
    public const string AloneRow = "alone";

    /// <summary>A blocker row this long past its due time is released: the blocker's copy has had the queue's lock time
    /// and a generous backlog's worth to come and settle, so it was settled unheard (or expired).</summary>
    public static readonly TimeSpan StaleAfter = RelayOptions.MessageLockDuration + TimeSpan.FromMinutes(10);

    /// <summary>A held message comes back this long after its blocker's retry is due (time for the retry to settle), and
    /// no sooner than this when the blocker is due already or the barrier could not be read.</summary>
    public static readonly TimeSpan HoldMargin = TimeSpan.FromSeconds(5);

    /// <summary>The longest hold: a blocker's retry is at most 2 h away (spec 6), the hold a little longer.</summary>
    public static readonly TimeSpan MaxHold = TimeSpan.FromHours(2) + TimeSpan.FromMinutes(30);

    private const int ReadParallelism = 16;

    public async Task<BarrierCheck> CheckAsync(IReadOnlyList<OrderedMessage> messages, CancellationToken cancellationToken)
    {
        var held = new Dictionary<int, HeldMessage>();
        var seen = new Dictionary<string, KeyState>();
        var byKey = messages.GroupBy(m => m.Key).ToList();
        var now = time.GetUtcNow();
        await Parallel.ForEachAsync(byKey, new ParallelOptions { MaxDegreeOfParallelism = ReadParallelism, CancellationToken = cancellationToken }, async (key, token) =>
        {
            var state = await DecideKeyAsync(key.Key, key.OrderBy(m => m.Arrival).ToList(), now, token).ConfigureAwait(false);
            lock (held)
            {
                seen[key.Key] = state;
                foreach (var (index, hold) in state.Held)
                {
                    held[index] = hold;
                }
            }
        }).ConfigureAwait(false);
        if (held.Count > 0)
        {
            metrics.OrderingHeld(held.Count);
        }
        return new TableCheck(held, seen);
    }

    private async Task<KeyState> DecideKeyAsync(string key, List<OrderedMessage> messages, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var partition = OrderingKeys.Hash(key);
        IReadOnlyList<BarrierRow> rows;
        try
        {
            rows = await table.ReadPartitionAsync(partition, cancellationToken).ConfigureAwait(false);
            metrics.OrderingBarrierRead("ok");
        }
        catch (Exception ex) when (ex is not OutOfMemoryException && !cancellationToken.IsCancellationRequested)
        {
            // Never sent unchecked: held as the same attempt, back soon.
            metrics.OrderingBarrierRead("failed");
            LogUnreadable(logger, OrderingKeys.ForLog(key), ex.GetType().Name, messages.Count);
            return new KeyState(partition, [], messages.ToDictionary(m => m.Index, _ => new HeldMessage(HoldMargin * 3, "held: the ordering barrier could not be read")), null);
        }

        var state = new KeyState(partition, rows, [], null);
        if (rows.FirstOrDefault(r => r.RowKey == ValveRow) is { } valve && valve.Due > now)
        {
            return state; // ordering is off for this key for now
        }
        var blockers = new List<(Arrival Arrival, BarrierRow Row)>();
        foreach (var row in rows.Where(r => r.RowKey.StartsWith(BlockerPrefix, StringComparison.Ordinal)))
        {
            if (row.Due + StaleAfter < now)
            {
                LogStaleReleased(logger, OrderingKeys.ForLog(key), row.Due);
                await TryAsync(() => table.DeleteAsync(partition, row.RowKey, row.ETag, cancellationToken), "release a stale blocker").ConfigureAwait(false);
                continue;
            }
            if (ParseArrival(row.RowKey) is { } arrival)
            {
                blockers.Add((arrival, row));
            }
        }
        blockers.Sort((a, b) => a.Arrival.CompareTo(b.Arrival));
        var alone = rows.FirstOrDefault(r => r.RowKey == AloneRow);
        var heldBehind = new Dictionary<string, (BarrierRow Row, int Count)>();
        var goneAlone = false;
        long? aloneSequence = null;
        foreach (var message in messages)
        {
            var blocker = blockers.FirstOrDefault(b => b.Arrival < message.Arrival);
            if (blocker.Row is not null)
            {
                var wait = blocker.Row.Due - now;
                state.Held[message.Index] = new HeldMessage(Clamp(wait + HoldMargin), "held behind an earlier message of the same profile that waits for its retry");
                heldBehind[blocker.Row.RowKey] = (blocker.Row, heldBehind.GetValueOrDefault(blocker.Row.RowKey).Count + 1);
            }
            else if (alone is not null && blockers.All(b => b.Arrival != message.Arrival))
            {
                // After a dead letter the next message goes first, alone; the rest of the key come after it settled.
                if (goneAlone)
                {
                    state.Held[message.Index] = new HeldMessage(HoldMargin, "held: the message before it goes alone after a dead letter");
                }
                else
                {
                    goneAlone = true;
                    aloneSequence = message.Sequence;
                }
            }
        }
        state = state with { AloneSequence = aloneSequence };
        foreach (var (row, count) in heldBehind.Values)
        {
            if (await CountHeldAsync(key, partition, row, count, now, cancellationToken).ConfigureAwait(false))
            {
                state.Held.Clear(); // the valve opened: the key's messages go
                break;
            }
        }
        return state;
    }

    /// <summary>Adds this batch's holds to the blocker's count (ETag-conditioned, read again once on a conflict); past
    /// the threshold the key's valve opens. True when it did.</summary>
    private async Task<bool> CountHeldAsync(string key, string partition, BarrierRow row, int count, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var current = row;
        for (var tries = 0; tries < 2; tries++)
        {
            var updated = current with { Held = current.Held + count };
            if (updated.Held > options.Value.OrderingMaxHeldPerKey)
            {
                await TryAsync(() => table.UpsertAsync(new BarrierRow(partition, ValveRow, now + RelayOptions.OrderingValveOpenFor), cancellationToken), "open a valve").ConfigureAwait(false);
                metrics.OrderingValveOpened();
                OrderingLog.ValveOpened(logger, OrderingKeys.ForLog(key), updated.Held, options.Value.OrderingMaxHeldPerKey, RelayOptions.OrderingValveOpenFor);
                return true;
            }
            var written = await TryAsync(() => table.UpdateAsync(updated, cancellationToken), "count held messages").ConfigureAwait(false);
            if (written is not false)
            {
                return false;
            }
            // Another batch counted meanwhile (412): read the row again and add to what it holds now.
            var again = await TryAsync(() => table.ReadPartitionAsync(partition, cancellationToken), "count held messages").ConfigureAwait(false);
            if (again?.FirstOrDefault(r => r.RowKey == row.RowKey) is not { } fresh)
            {
                return false; // the blocker settled meanwhile
            }
            current = fresh;
        }
        return false;
    }

    public async Task BeforeSettleAsync(BarrierCheck check, IReadOnlyList<OrderedSettlement> settled, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        foreach (var item in settled)
        {
            if (item is { Held: false, Outcome: RelayOutcome.RetryLater retry })
            {
                // Its copy is scheduled next: the blocker of the later messages of its key until it is settled. The
                // count of held messages starts again with each retry (they are held until about its due time).
                var row = new BarrierRow(OrderingKeys.Hash(item.Message.Key), BlockerPrefix + item.Message.Arrival.RowKey, now + retry.Delay);
                if (await TryAsync(() => table.UpsertAsync(row, cancellationToken), "record a blocker").ConfigureAwait(false) is null)
                {
                    LogBlockerNotRecorded(logger, OrderingKeys.ForLog(item.Message.Key));
                }
            }
        }
    }

    public async Task AfterSettleAsync(BarrierCheck check, IReadOnlyList<OrderedSettlement> settled, CancellationToken cancellationToken)
    {
        var seen = (check as TableCheck)?.Keys;
        foreach (var item in settled)
        {
            var final = item.Outcome is RelayOutcome.Delivered or RelayOutcome.Skipped or RelayOutcome.DeadLetter;
            var state = seen?.GetValueOrDefault(item.Message.Key);
            var partition = state?.Partition ?? OrderingKeys.Hash(item.Message.Key);
            if (final)
            {
                var rowKey = BlockerPrefix + item.Message.Arrival.RowKey;
                // Its own blocker row, seen when the batch read the key; unseen (a tracker settles it) only a copy can have
                // one. Deleted whatever its ETag: only this message writes its row, other batches only count on it.
                if (state?.Rows.Any(r => r.RowKey == rowKey) == true || (state is null && item.Message.IsCopy))
                {
                    await TryAsync(() => table.DeleteAsync(partition, rowKey, "*", cancellationToken), "release a blocker").ConfigureAwait(false);
                }
            }
            if (item.Outcome is RelayOutcome.DeadLetter && !item.Held)
            {
                await TryAsync(() => table.UpsertAsync(new BarrierRow(partition, AloneRow, time.GetUtcNow()), cancellationToken), "leave the alone mark").ConfigureAwait(false);
            }
            else if (state?.AloneSequence == item.Message.Sequence && item.Outcome is not (RelayOutcome.AwaitingJob or RelayOutcome.Gathered)
                && state.Rows.FirstOrDefault(r => r.RowKey == AloneRow) is { } mark)
            {
                // The message that went alone settled (delivered, or now a blocker itself): the mark has done its work.
                await TryAsync(() => table.DeleteAsync(partition, AloneRow, mark.ETag, cancellationToken), "clear the alone mark").ConfigureAwait(false);
            }
        }
    }

    private static TimeSpan Clamp(TimeSpan wait) => wait < HoldMargin ? HoldMargin : wait > MaxHold ? MaxHold : wait;

    private static Arrival? ParseArrival(string rowKey)
    {
        var parts = rowKey.AsSpan(BlockerPrefix.Length);
        var dash = parts.IndexOf('-');
        return dash > 0 && long.TryParse(parts[..dash], out var at) && long.TryParse(parts[(dash + 1)..], out var sequence) ? new Arrival(at, sequence) : null;
    }

    /// <summary>A barrier write that fails is logged and left: the message's own settlement goes on (nothing is lost);
    /// a missed release is released as stale later.</summary>
    private async Task<T?> TryAsync<T>(Func<Task<T>> write, string what)
        where T : class
    {
        try
        {
            return await write().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogWriteFailed(logger, what, ex.GetType().Name);
            return null;
        }
    }

    private async Task<bool?> TryAsync(Func<Task<bool>> write, string what)
    {
        try
        {
            return await write().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogWriteFailed(logger, what, ex.GetType().Name);
            return null;
        }
    }

    private async Task<object?> TryAsync(Func<Task> write, string what)
    {
        try
        {
            await write().ConfigureAwait(false);
            return this;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogWriteFailed(logger, what, ex.GetType().Name);
            return null;
        }
    }

    /// <summary>What the check read of one key, for settling.</summary>
    private sealed record KeyState(string Partition, IReadOnlyList<BarrierRow> Rows, Dictionary<int, HeldMessage> Held, long? AloneSequence);

    private sealed class TableCheck(IReadOnlyDictionary<int, HeldMessage> held, IReadOnlyDictionary<string, KeyState> keys) : BarrierCheck(held)
    {
        public IReadOnlyDictionary<string, KeyState> Keys { get; } = keys;
    }

    [LoggerMessage(EventId = 3302, Level = LogLevel.Warning, Message = "The ordering barrier could not be read for key {KeyHash} ({ExceptionType}); its {Count} ordered message(s) are held (put off, no attempt spent)")]
    private static partial void LogUnreadable(ILogger logger, string keyHash, string exceptionType, int count);

    [LoggerMessage(EventId = 3303, Level = LogLevel.Information, Message = "A stale ordering blocker of key {KeyHash} (due {Due}) was released: its message was settled or expired unheard")]
    private static partial void LogStaleReleased(ILogger logger, string keyHash, DateTimeOffset due);

    [LoggerMessage(EventId = 3304, Level = LogLevel.Warning, Message = "The ordering barrier could not {What} ({ExceptionType}); the message is settled all the same")]
    private static partial void LogWriteFailed(ILogger logger, string what, string exceptionType);

    [LoggerMessage(EventId = 3305, Level = LogLevel.Warning, Message = "An ordered message of key {KeyHash} is retried without a blocker row: later messages of its key are not held behind it")]
    private static partial void LogBlockerNotRecorded(ILogger logger, string keyHash);
}
