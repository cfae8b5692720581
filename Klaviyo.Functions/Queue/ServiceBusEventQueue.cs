using System.Security.Cryptography;
using System.Text;
using Azure.Messaging.ServiceBus;

namespace Klaviyo.Functions.Queue;

/// <summary>The events queue on Azure Service Bus: batched sends, scheduled copies for queue-level retries.</summary>
internal sealed class ServiceBusEventQueue(ServiceBusSender sender) : IEventQueue
{
    /// <summary>Service Bus refuses a MessageId longer than this.</summary>
    public const int MaxMessageIdLength = 128;

    /// <summary>
    /// Sends every event in as few batches as the broker allows: when a message no longer fits, the current batch is
    /// sent and a new one started. Throws on the first failure; batches sent before it stay sent, which is safe
    /// because a retried request is de-duplicated by MessageId.
    /// </summary>
    public async Task SendAsync(IReadOnlyList<QueuedEvent> events, CancellationToken cancellationToken = default)
    {
        if (events.Count == 0)
        {
            return;
        }
        var batch = await sender.CreateMessageBatchAsync(cancellationToken);
        try
        {
            foreach (var queuedEvent in events)
            {
                var message = ToMessage(queuedEvent);
                if (batch.TryAddMessage(message))
                {
                    continue;
                }
                if (batch.Count == 0)
                {
                    throw TooLarge(queuedEvent, batch.MaxSizeInBytes);
                }
                await sender.SendMessagesAsync(batch, cancellationToken);
                batch.Dispose();
                batch = await sender.CreateMessageBatchAsync(cancellationToken);
                if (!batch.TryAddMessage(message))
                {
                    throw TooLarge(queuedEvent, batch.MaxSizeInBytes);
                }
            }
            if (batch.Count > 0)
            {
                await sender.SendMessagesAsync(batch, cancellationToken);
            }
        }
        finally
        {
            batch.Dispose();
        }
    }

    /// <summary>Schedules a copy for a queue-level retry under its own MessageId (<c>&lt;id&gt;/attempt-&lt;n&gt;</c>, made by the
    /// caller), so scheduling the same retry twice is de-duplicated too.</summary>
    public Task ScheduleAsync(QueuedEvent queuedEvent, DateTimeOffset enqueueAt, CancellationToken cancellationToken = default) =>
        sender.ScheduleMessageAsync(ToMessage(queuedEvent), enqueueAt, cancellationToken);

    /// <summary>
    /// The MessageId as given when it fits the broker's 128 characters. A longer one (a 128-character event id with
    /// <c>/attempt-n</c> or <c>/replay-n</c>) becomes the SHA-256 of the whole id in hex plus its last <c>/…</c> part:
    /// deterministic (duplicate detection still works) and accepted by the broker.
    /// </summary>
    public static string BoundedMessageId(string messageId)
    {
        if (messageId.Length <= MaxMessageIdLength)
        {
            return messageId;
        }
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(messageId)));
        var slash = messageId.LastIndexOf('/');
        var tail = slash < 0 ? "" : messageId[slash..];
        return hash.Length + tail.Length <= MaxMessageIdLength ? hash + tail : hash;
    }

    internal static ServiceBusMessage ToMessage(QueuedEvent queuedEvent)
    {
        var message = new ServiceBusMessage(new BinaryData(queuedEvent.Body))
        {
            MessageId = BoundedMessageId(queuedEvent.MessageId),
            ContentType = MessageProperties.JsonContentType,
            Subject = queuedEvent.Subject,
        };
        message.ApplicationProperties[MessageProperties.Attempt] = queuedEvent.Attempt;
        message.ApplicationProperties[MessageProperties.EventMessageId] = queuedEvent.EventMessageId ?? queuedEvent.MessageId;
        if (queuedEvent.Ordering is { } ordering)
        {
            message.ApplicationProperties[MessageProperties.OrderingKey] = ordering.Key;
            message.ApplicationProperties[MessageProperties.ReceivedAt] = ordering.ReceivedAtMs;
            if (ordering.Sequence is { } sequence)
            {
                message.ApplicationProperties[MessageProperties.ArrivalSequence] = sequence;
            }
        }
        return message;
    }

    private ServiceBusException TooLarge(QueuedEvent queuedEvent, long maxBatchBytes) => new(
        $"Event {queuedEvent.MessageId} ({queuedEvent.Body.Length} bytes) does not fit in an empty batch of {maxBatchBytes} bytes.",
        ServiceBusFailureReason.MessageSizeExceeded,
        sender.EntityPath);
}
