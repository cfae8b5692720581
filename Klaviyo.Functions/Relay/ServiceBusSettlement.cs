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
internal sealed class ServiceBusSettlement(ServiceBusMessageActions actions, IEventQueue queue, Func<ServiceBusReceiver>? deferredReceiver = null)
    : IRelaySettlement<ServiceBusReceivedMessage>
{
    private const int Parallelism = 16;

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
            var copy = new QueuedEvent(copyId, message.Subject ?? "", message.Body.ToMemory(), nextAttempt, eventMessageId);
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

    public Task DeferAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, CancellationToken cancellationToken) =>
        EachAsync(messages, cancellationToken, (message, token) => IsDeferred(message)
            ? Receiver.DeferMessageAsync(message, cancellationToken: token)
            : actions.DeferMessageAsync(message, cancellationToken: token));

    public async Task<IReadOnlyList<RelayDelivery<ServiceBusReceivedMessage>>> ReceiveDeferredAsync(IReadOnlyList<long> sequences, CancellationToken cancellationToken)
    {
        var received = new List<ServiceBusReceivedMessage>();
        foreach (var chunk in sequences.Chunk(100))
        {
            try
            {
                received.AddRange(await Receiver.ReceiveDeferredMessagesAsync(chunk, cancellationToken).ConfigureAwait(false));
            }
            catch (ServiceBusException ex) when (ex.Reason == ServiceBusFailureReason.MessageNotFound)
            {
                // Some of the chunk was settled already (an earlier run of this tracker): take them one by one.
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

    /// <summary>How the relay reads a received message.</summary>
    public static RelayDelivery<ServiceBusReceivedMessage> Delivery(ServiceBusReceivedMessage message) =>
        new(message, RelayMessage.EventMessageId(message), message.Body.ToMemory(), RelayMessage.Attempt(message), message.SequenceNumber, message.Subject ?? "");

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
