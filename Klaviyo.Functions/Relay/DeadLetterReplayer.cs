using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Queue;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Relay;

/// <summary>One dead letter moved back to the queue.</summary>
public sealed record ReplayedMessage(string MessageId, string QueueMessageId, string? Reason, string? Description);

/// <summary>What a replay did: the messages moved, and how many dead letters it looked at.</summary>
public sealed record ReplayResult(IReadOnlyList<ReplayedMessage> Moved, int Scanned);

/// <summary>
/// Moves dead letters back to the events queue with a fresh attempt count (spec section 6). Each copy is on the queue
/// before its dead letter is removed, so a failure part-way leaves at worst a duplicate the queue itself drops
/// (the copy's MessageId is keyed on the dead letter's sequence number), never a loss.
/// </summary>
public sealed class DeadLetterReplayer(IDeadLetterStore store, IEventQueue queue, RelayMetrics metrics, ILogger<DeadLetterReplayer> logger)
{
    public const int MaxCount = 1000;

    /// <summary>Dead letters looked at per replay when filtering by reason (they stay locked until the replay ends).</summary>
    public const int ScanLimit = 5000;

    private const int ReceiveBatch = 100;

    public async Task<ReplayResult> ReplayAsync(int max, string? reason, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(max, MaxCount);

        var moved = new List<ReplayedMessage>();
        var scanned = 0;
        var reader = await store.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            while (moved.Count < max && scanned < ScanLimit)
            {
                var wanted = reason is null ? max - moved.Count : ReceiveBatch;
                var batch = await reader.ReceiveAsync(Math.Min(wanted, ScanLimit - scanned), cancellationToken).ConfigureAwait(false);
                if (batch.Count == 0)
                {
                    break;
                }
                foreach (var deadLetter in batch)
                {
                    scanned++;
                    if (moved.Count >= max || (reason is not null && !string.Equals(deadLetter.Reason, reason, StringComparison.OrdinalIgnoreCase)))
                    {
                        continue; // released unchanged when the reader is disposed
                    }
                    var messageId = RelayMessage.EventMessageId(deadLetter.MessageId, deadLetter.Properties);
                    var copy = new QueuedEvent(RelayMessage.ReplayMessageId(messageId, deadLetter.SequenceNumber), deadLetter.Subject ?? "", deadLetter.Body, Attempt: 1, EventMessageId: messageId);
                    await queue.SendAsync([copy], cancellationToken).ConfigureAwait(false);
                    await reader.RemoveAsync(deadLetter, cancellationToken).ConfigureAwait(false);
                    moved.Add(new ReplayedMessage(messageId, copy.MessageId, deadLetter.Reason, deadLetter.Description));
                    metrics.Replayed(deadLetter.Reason);
                    Log.Replayed(logger, messageId, deadLetter.Reason, copy.MessageId);
                }
            }
        }
        Log.ReplayFinished(logger, moved.Count, scanned, reason);
        return new ReplayResult(moved, scanned);
    }
}
