using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Microsoft.Azure.Functions.Worker;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// Settlement on Service Bus for one trigger invocation: the message actions, the queue for retry copies and trackers,
/// and a receiver for deferred messages. A message taken back from deferral is locked by that receiver, so it is
/// settled through it; every other message through the invocation's actions. Messages are settled in parallel (a
/// batch has no lock renewal: settling a thousand one after another would eat the time the lock keeps for it).
/// </summary>
internal sealed class ServiceBusSettlement(ServiceBusMessageActions actions, IEventQueue queue, Func<ServiceBusReceiver>? deferredReceiver = null, TimeProvider? time = null,
    GatheredParking? parking = null)
    : IRelaySettlement<ServiceBusReceivedMessage>
{
    /// <summary>Application property stamped on a message when it is first held back for a fuller call (Unix milliseconds).</summary>
    public const string GatheredAtProperty = "gatheredAt";

    /// <summary>True when this settlement can keep messages for the next batch (<see cref="GatherAsync"/>).</summary>
    public bool CanGather => parking is not null && deferredReceiver is not null && parking.Window > TimeSpan.Zero;

    private const int Parallelism = 16;

    /// <summary>Application property stamped on a message when it is parked (Unix milliseconds): how long it has waited,
    /// whatever time it spent queued before (<see cref="ParkedBeforeAsync"/>).</summary>
    public const string DeferredAtProperty = "deferredAt";

    /// <summary>Most messages one peek returns.</summary>
    private const int PeekPage = 250;

    /// <summary>Most messages <see cref="ParkedBeforeAsync"/> peeks at in one sweep, from the queue's oldest.</summary>
    public const int MaxSweepPeek = 5_000;

    private readonly HashSet<ServiceBusReceivedMessage> _fromReceiver = new(ReferenceEqualityComparer.Instance);
    private ServiceBusReceiver? _receiver;

    public Task CompleteAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, CancellationToken cancellationToken) =>
        EachAsync(messages, cancellationToken, (message, token) => IsDeferred(message)
            ? Receiver.CompleteMessageAsync(message, token)
            : actions.CompleteMessageAsync(message, token));

    /// <summary>Schedules the copy first: if that throws, the original is given back (<see cref="RelaySettler"/>), so
    /// nothing is lost. If the complete after it throws, the copy exists and the original comes back too: a duplicate
    /// delivery Klaviyo drops by the event's <c>unique_id</c>.</summary>
    public Task RetryAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, int nextAttempt, DateTimeOffset due, CancellationToken cancellationToken) =>
        EachAsync(messages, cancellationToken, async (message, token) =>
        {
            var eventMessageId = RelayMessage.EventMessageId(message);
            // A delivery put off without spending its attempt needs an id of its own too, or duplicate detection drops it.
            var copyId = nextAttempt > RelayMessage.Attempt(message)
                ? RelayMessage.RetryMessageId(message.MessageId ?? eventMessageId, nextAttempt)
                : RelayMessage.PutOffMessageId(message.MessageId ?? eventMessageId, message.SequenceNumber, nextAttempt);
            // An ordered event's copy keeps its key and arrival (receivedAt, then the original's sequence number).
            var copy = new QueuedEvent(copyId, message.Subject ?? "", message.Body.ToMemory(), nextAttempt, eventMessageId, RelayMessage.Ordering(message.ApplicationProperties, message.SequenceNumber));
            await queue.ScheduleAsync(copy, due, token).ConfigureAwait(false);
            await (IsDeferred(message) ? Receiver.CompleteMessageAsync(message, token) : actions.CompleteMessageAsync(message, token)).ConfigureAwait(false);
        });

    public Task DeadLetterAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, string reason, string? description, CancellationToken cancellationToken) =>
        EachAsync(messages, cancellationToken, (message, token) => IsDeferred(message)
            ? Receiver.DeadLetterMessageAsync(message, reason, description, token)
            : actions.DeadLetterMessageAsync(message, deadLetterReason: reason, deadLetterErrorDescription: description, cancellationToken: token));

    public Task GiveBackAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, IDictionary<string, object> properties, CancellationToken cancellationToken) =>
        EachAsync(messages, cancellationToken, (message, token) => IsDeferred(message)
            // Taken back from deferral: deferring it again keeps it for the tracker's next poll.
            ? Receiver.DeferMessageAsync(message, properties, token)
            : actions.AbandonMessageAsync(message, properties, token));

    /// <summary>
    /// Parks the messages for this instance's next batch (<see cref="GatheredParking"/>): first the marker that takes
    /// them back once the longest-waiting has waited the window (a parked message without one would wait for the
    /// sweeper), then each message deferred with the time it first waited (<see cref="GatheredAtProperty"/>).
    /// </summary>
    public async Task GatherAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, CancellationToken cancellationToken)
    {
        if (!CanGather)
        {
            throw new InvalidOperationException("This Service Bus settlement does not gather.");
        }
        var now = (time ?? TimeProvider.System).GetUtcNow();
        var sequences = messages.Select(m => m.SequenceNumber).ToList();
        var oldest = messages.Select(m => GatheredAt(m) ?? now).Min();
        var marker = new QueuedEvent(RelayMessage.GatheredMessageId(sequences.Min(), now), RelayMessage.GatheredSubject, GatheredParking.MarkerBody(sequences), 1, "gathered");
        await queue.ScheduleAsync(marker, oldest + parking!.Window, cancellationToken).ConfigureAwait(false);
        await EachAsync(messages, cancellationToken, (message, token) =>
        {
            var stamp = new Dictionary<string, object>
            {
                [GatheredAtProperty] = (GatheredAt(message) ?? now).ToUnixTimeMilliseconds(),
                [DeferredAtProperty] = now.ToUnixTimeMilliseconds(),
            };
            return IsDeferred(message) ? Receiver.DeferMessageAsync(message, stamp, token) : actions.DeferMessageAsync(message, stamp, token);
        }).ConfigureAwait(false);
        parking.Add(sequences);
    }

    private static DateTimeOffset? GatheredAt(ServiceBusReceivedMessage message) =>
        message.ApplicationProperties.TryGetValue(GatheredAtProperty, out var at) && at is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    public Task DeferAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, CancellationToken cancellationToken)
    {
        var stamp = new Dictionary<string, object> { [DeferredAtProperty] = (time ?? TimeProvider.System).GetUtcNow().ToUnixTimeMilliseconds() };
        return EachAsync(messages, cancellationToken, (message, token) => IsDeferred(message)
            ? Receiver.DeferMessageAsync(message, cancellationToken: token)
            : actions.DeferMessageAsync(message, stamp, token));
    }

    public async Task<IReadOnlyList<RelayDelivery<ServiceBusReceivedMessage>>> ReceiveDeferredAsync(IReadOnlyList<long> sequences, CancellationToken cancellationToken)
    {
        var received = new List<ServiceBusReceivedMessage>();
        try
        {
            foreach (var chunk in sequences.Chunk(100))
            {
                try
                {
                    received.AddRange(await Receiver.ReceiveDeferredMessagesAsync(chunk, cancellationToken).ConfigureAwait(false));
                }
                catch (ServiceBusException ex) when (ex.Reason == ServiceBusFailureReason.MessageNotFound)
                {
                    // Some of the chunk is settled already, or locked now (by a run that died, or another receiver): take
                    // them one by one. A locked one is not settled: the tracker sees it still parked and comes back.
                    foreach (var sequence in chunk)
                    {
                        try
                        {
                            received.AddRange(await Receiver.ReceiveDeferredMessagesAsync([sequence], cancellationToken).ConfigureAwait(false));
                        }
                        catch (ServiceBusException one) when (one.Reason == ServiceBusFailureReason.MessageNotFound)
                        {
                        }
                    }
                }
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // What this run took back is locked by the relay's own receiver: parked again now, it is there for the next run.
            using var releasing = new CancellationTokenSource(RelaySettler.GiveBackTimeout);
            foreach (var message in received)
            {
                try
                {
                    await Receiver.DeferMessageAsync(message, cancellationToken: releasing.Token).ConfigureAwait(false);
                }
                catch (Exception release) when (release is not OutOfMemoryException)
                {
                    // Its lock lapses on its own: parked again then.
                }
            }
            throw;
        }
        lock (_fromReceiver)
        {
            foreach (var message in received)
            {
                _fromReceiver.Add(message);
            }
        }
        return received.Select(Delivery).ToList();
    }

    public Task SendLaterAsync(QueuedEvent message, DateTimeOffset due, CancellationToken cancellationToken) =>
        queue.ScheduleAsync(message, due, cancellationToken);

    /// <summary>Peeks from the lowest sequence wanted: a peek shows deferred messages, locked or not, in sequence order,
    /// so every wanted sequence up to the last one shown that is not shown deferred is gone.</summary>
    public async Task<IReadOnlySet<long>> StillParkedAsync(IReadOnlyList<long> sequences, CancellationToken cancellationToken)
    {
        var parked = new HashSet<long>();
        var wanted = new SortedSet<long>(sequences);
        while (wanted.Count > 0)
        {
            var page = await Receiver.PeekMessagesAsync(PeekPage, wanted.Min, cancellationToken).ConfigureAwait(false);
            if (page.Count == 0)
            {
                break;
            }
            foreach (var message in page)
            {
                if (wanted.Contains(message.SequenceNumber) && message.State == ServiceBusMessageState.Deferred)
                {
                    parked.Add(message.SequenceNumber);
                }
            }
            wanted.RemoveWhere(s => s <= page[^1].SequenceNumber);
        }
        return parked;
    }

    /// <summary>Peeks the queue from its oldest message, at most <see cref="MaxSweepPeek"/>: a parked message nobody will
    /// settle is never received, so everything older than it is consumed in time and it sinks to the front.</summary>
    public async Task<IReadOnlyList<long>> ParkedBeforeAsync(DateTimeOffset before, int max, CancellationToken cancellationToken)
    {
        var found = new List<long>();
        long from = 0;
        for (var peeked = 0; peeked < MaxSweepPeek && found.Count < max;)
        {
            var page = await Receiver.PeekMessagesAsync(PeekPage, from, cancellationToken).ConfigureAwait(false);
            if (page.Count == 0)
            {
                break;
            }
            peeked += page.Count;
            found.AddRange(page.Where(m => m.State == ServiceBusMessageState.Deferred && DeferredAt(m) < before).Select(m => m.SequenceNumber));
            from = page[^1].SequenceNumber + 1;
        }
        return found.Take(max).ToList();
    }

    private static DateTimeOffset DeferredAt(ServiceBusReceivedMessage message) =>
        message.ApplicationProperties.TryGetValue(DeferredAtProperty, out var at) && at is long ms
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
            : message.EnqueuedTime; // parked before the relay stamped it

    /// <summary>How the relay reads a received message.</summary>
    public static RelayDelivery<ServiceBusReceivedMessage> Delivery(ServiceBusReceivedMessage message) =>
        new(message, RelayMessage.EventMessageId(message), message.Body.ToMemory(), RelayMessage.Attempt(message), message.SequenceNumber, message.Subject ?? "",
            RelayMessage.Ordering(message.ApplicationProperties, message.SequenceNumber), GatheredAt(message));

    private ServiceBusReceiver Receiver => _receiver ??= deferredReceiver?.Invoke()
        ?? throw new InvalidOperationException("No Service Bus receiver for deferred messages is configured.");

    private bool IsDeferred(ServiceBusReceivedMessage message)
    {
        lock (_fromReceiver)
        {
            return _fromReceiver.Contains(message);
        }
    }

    private static async Task EachAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, CancellationToken cancellationToken, Func<ServiceBusReceivedMessage, CancellationToken, Task> settle)
    {
        if (messages.Count == 1)
        {
            await settle(messages[0], cancellationToken).ConfigureAwait(false);
            return;
        }
        await Parallel.ForEachAsync(messages, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = cancellationToken },
            async (message, token) => await settle(message, token).ConfigureAwait(false)).ConfigureAwait(false);
    }
}
