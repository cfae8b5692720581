using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Microsoft.Azure.Functions.Worker;

namespace Klaviyo.Functions.Relay;

/// <summary>Queue trigger: the processor decides, this settles (complete, schedule a copy + complete, or dead-letter).</summary>
public sealed class RelayFunction(RelayProcessor processor, IEventQueue queue, TimeProvider time)
{
    public const string Name = "Relay";

    [Function(Name)]
    public async Task RunAsync(
        [ServiceBusTrigger("%EventsQueueName%", Connection = MessageProperties.ConnectionName, AutoCompleteMessages = false)]
        ServiceBusReceivedMessage message,
        ServiceBusMessageActions actions,
        CancellationToken cancellationToken)
    {
        var messageId = RelayMessage.EventMessageId(message);
        var attempt = RelayMessage.Attempt(message);
        var body = message.Body.ToMemory();
        var outcome = await processor.ProcessAsync(body, messageId, attempt, cancellationToken).ConfigureAwait(false);

        // Settlement is not cancelled: once Klaviyo has the event, completing beats a redelivery.
        switch (outcome)
        {
            case RelayOutcome.Delivered or RelayOutcome.Skipped:
                await actions.CompleteMessageAsync(message, CancellationToken.None).ConfigureAwait(false);
                break;
            case RelayOutcome.RetryLater retry:
                // Schedule first: if that throws, the original stays locked and comes back, so nothing is lost.
                var copyId = retry.NextAttempt > attempt
                    ? RelayMessage.RetryMessageId(message.MessageId ?? messageId, retry.NextAttempt)
                    : RelayMessage.PutOffMessageId(message.MessageId ?? messageId, message.SequenceNumber, attempt);
                var copy = new QueuedEvent(copyId, message.Subject ?? "", body, retry.NextAttempt, messageId);
                await queue.ScheduleAsync(copy, time.GetUtcNow() + retry.Delay, CancellationToken.None).ConfigureAwait(false);
                await actions.CompleteMessageAsync(message, CancellationToken.None).ConfigureAwait(false);
                break;
            case RelayOutcome.DeadLetter dead:
                await actions.DeadLetterMessageAsync(
                    message,
                    deadLetterReason: dead.Reason.ToString(),
                    deadLetterErrorDescription: dead.Description,
                    cancellationToken: CancellationToken.None).ConfigureAwait(false);
                break;
            default:
                throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}; the message is left to its lock.");
        }
    }
}
