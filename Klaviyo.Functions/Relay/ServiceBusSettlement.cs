using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Microsoft.Azure.Functions.Worker;

namespace Klaviyo.Functions.Relay;

/// <summary>Settlement on Service Bus for one trigger invocation: the message actions, and the queue for retry copies.</summary>
internal sealed class ServiceBusSettlement(ServiceBusMessageActions actions, IEventQueue queue) : IRelaySettlement<ServiceBusReceivedMessage>
{
    public async Task CompleteAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, CancellationToken cancellationToken)
    {
        foreach (var message in messages)
        {
            await actions.CompleteMessageAsync(message, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Schedules the copy first: if that throws, the original is given back (<see cref="RelaySettler"/>), so
    /// nothing is lost. If the complete after it throws, the copy exists and the original comes back too: a duplicate
    /// delivery Klaviyo drops by the event's <c>unique_id</c>.</summary>
    public async Task RetryAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, int nextAttempt, DateTimeOffset due, CancellationToken cancellationToken)
    {
        foreach (var message in messages)
        {
            var eventMessageId = RelayMessage.EventMessageId(message);
            // A delivery put off without spending its attempt needs an id of its own too, or duplicate detection drops it.
            var copyId = nextAttempt > RelayMessage.Attempt(message)
                ? RelayMessage.RetryMessageId(message.MessageId ?? eventMessageId, nextAttempt)
                : RelayMessage.PutOffMessageId(message.MessageId ?? eventMessageId, message.SequenceNumber, nextAttempt);
            var copy = new QueuedEvent(copyId, message.Subject ?? "", message.Body.ToMemory(), nextAttempt, eventMessageId);
            await queue.ScheduleAsync(copy, due, cancellationToken).ConfigureAwait(false);
            await actions.CompleteMessageAsync(message, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task DeadLetterAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, string reason, string? description, CancellationToken cancellationToken)
    {
        foreach (var message in messages)
        {
            await actions.DeadLetterMessageAsync(message, deadLetterReason: reason, deadLetterErrorDescription: description, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task GiveBackAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, IDictionary<string, object> properties, CancellationToken cancellationToken)
    {
        foreach (var message in messages)
        {
            await actions.AbandonMessageAsync(message, properties, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task DeferAsync(IReadOnlyList<ServiceBusReceivedMessage> messages, CancellationToken cancellationToken)
    {
        foreach (var message in messages)
        {
            await actions.DeferMessageAsync(message, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }
}
