using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Queue;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Relay;

/// <summary>One dead letter moved back to the queue.</summary>
/// <param name="DeadLetterKept">The copy is on the queue but removing the dead letter failed (its lock was lost): it
/// stays in the dead letters too, and replaying it again yields the same copy id, which the queue drops as a duplicate.</param>
internal sealed record ReplayedMessage(string MessageId, string QueueMessageId, string? Reason, string? Description, bool DeadLetterKept = false);

/// <summary>What a replay did: the messages moved, how many dead letters it looked at, and why it stopped early if it did.</summary>
internal sealed record ReplayResult(IReadOnlyList<ReplayedMessage> Moved, int Scanned, string? Interrupted = null);

/// <summary>
/// Moves dead letters back to the events queue with a fresh attempt count (spec section 6), a page of at most
/// <see cref="PageSize"/> at a time: each page's copies are sent in one call and its dead letters removed before the
/// next page is received, so no dead letter waits under its lock behind hundreds of others. Each copy is on the queue
/// before its dead letter is removed, so a failure part-way leaves at worst a duplicate the queue itself drops (the
/// copy's MessageId is keyed on the dead letter's sequence number), never a loss; and a failure never loses the list
/// of what was already moved: the replay stops and answers with it.
/// </summary>
internal sealed partial class DeadLetterReplayer(IDeadLetterStore store, IEventQueue queue, RelayMetrics metrics, ILogger<DeadLetterReplayer> logger)
{
    public const int MaxCount = 1000;

    /// <summary>Dead letters looked at per replay when filtering by reason (they stay locked until the replay ends).</summary>
    public const int ScanLimit = 5000;

    /// <summary>Dead letters received, copied and removed at a time.</summary>
    public const int PageSize = 100;

    public async Task<ReplayResult> ReplayAsync(int max, string? reason, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(max, MaxCount);

        var moved = new List<ReplayedMessage>();
        var scanned = 0;
        string? interrupted = null;
        var reader = await store.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            try
            {
                while (moved.Count < max && scanned < ScanLimit)
                {
                    var wanted = reason is null ? Math.Min(PageSize, max - moved.Count) : PageSize;
                    var page = await reader.ReceiveAsync(Math.Min(wanted, ScanLimit - scanned), cancellationToken).ConfigureAwait(false);
                    if (page.Count == 0)
                    {
                        break;
                    }
                    scanned += page.Count;
                    // Those not taken are released unchanged when the reader is disposed.
                    var taken = page.Where(d => reason is null || string.Equals(d.Reason, reason, StringComparison.OrdinalIgnoreCase)).Take(max - moved.Count).ToList();
                    await MovePageAsync(reader, taken, moved, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                interrupted = $"{ex.GetType().Name}: {ex.Message}";
                LogInterrupted(logger, moved.Count, ex.GetType().Name);
            }
        }
        Log.ReplayFinished(logger, moved.Count, scanned, reason);
        return new ReplayResult(moved, scanned, interrupted);
    }

    private async Task MovePageAsync(IDeadLetterReader reader, List<DeadLetteredMessage> page, List<ReplayedMessage> moved, CancellationToken cancellationToken)
    {
        if (page.Count == 0)
        {
            return;
        }
        var copies = page.Select(deadLetter =>
        {
            var messageId = RelayMessage.EventMessageId(deadLetter.MessageId, deadLetter.Properties);
            // A replay keeps the event's ordering key and receivedAt; its sequence is the replay's own.
            var ordering = RelayMessage.Ordering(deadLetter.Properties, 0) is { } stamp ? stamp with { Sequence = null } : null;
            return new QueuedEvent(RelayMessage.ReplayMessageId(messageId, deadLetter.SequenceNumber), deadLetter.Subject ?? "", deadLetter.Body, Attempt: 1, EventMessageId: messageId, Ordering: ordering);
        }).ToList();
        await queue.SendAsync(copies, cancellationToken).ConfigureAwait(false);
        for (var i = 0; i < page.Count; i++)
        {
            var (deadLetter, copy) = (page[i], copies[i]);
            var kept = false;
            try
            {
                await reader.RemoveAsync(deadLetter, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                kept = true; // the copy is on the queue: report it, and every later one of the page as well
            }
            moved.Add(new ReplayedMessage(copy.EventMessageId!, copy.MessageId, deadLetter.Reason, deadLetter.Description, kept));
            metrics.Replayed(deadLetter.Reason);
            Log.Replayed(logger, copy.EventMessageId!, deadLetter.Reason, copy.MessageId);
        }
        if (moved.Any(m => m.DeadLetterKept))
        {
            throw new InvalidOperationException("the lock on a dead letter was lost after its copy was queued; the dead letter was kept");
        }
    }

    [LoggerMessage(EventId = 3203, Level = LogLevel.Warning, Message = "Dead-letter replay stopped early after moving {Moved} ({ExceptionType}); what it moved is in its answer")]
    private static partial void LogInterrupted(ILogger logger, int moved, string exceptionType);
}
