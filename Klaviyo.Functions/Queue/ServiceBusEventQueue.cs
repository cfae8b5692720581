using System.Security.Cryptography;
using System.Text;
using Azure.Messaging.ServiceBus;

namespace Klaviyo.Functions.Queue;

/// <summary>The events queue on Azure Service Bus: batched sends, scheduled copies for queue-level retries.</summary>
public sealed class ServiceBusEventQueue(ServiceBusSender sender) : IEventQueue
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
                var message = ToMessage(queuedEvent, queuedEvent.MessageId);
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

    /// <summary>Schedules the copy for attempt <see cref="QueuedEvent.Attempt"/> with MessageId
    /// <c>&lt;eventMessageId&gt;/attempt-&lt;n&gt;</c>, so scheduling the same retry twice is de-duplicated too.</summary>
    public Task ScheduleAsync(QueuedEvent queuedEvent, DateTimeOffset enqueueAt, CancellationToken cancellationToken = default) =>
        sender.ScheduleMessageAsync(ToMessage(queuedEvent, AttemptMessageId(queuedEvent.MessageId, queuedEvent.Attempt)), enqueueAt, cancellationToken);

    /// <summary>
    /// <c>&lt;eventMessageId&gt;/attempt-&lt;n&gt;</c>; when that would exceed 128 characters the event id is replaced by
    /// its SHA-256 in hex, which keeps the id deterministic (duplicate detection) and within the broker's limit.
    /// </summary>
    public static string AttemptMessageId(string eventMessageId, int attempt)
    {
        var suffix = $"/attempt-{attempt}";
        if (eventMessageId.Length + suffix.Length <= MaxMessageIdLength)
        {
            return eventMessageId + suffix;
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(eventMessageId))) + suffix;
    }

    private static ServiceBusMessage ToMessage(QueuedEvent queuedEvent, string messageId)
    {
        var message = new ServiceBusMessage(new BinaryData(queuedEvent.Body))
        {
            MessageId = messageId,
            ContentType = MessageProperties.JsonContentType,
            Subject = queuedEvent.Subject,
        };
        message.ApplicationProperties[MessageProperties.Attempt] = queuedEvent.Attempt;
        message.ApplicationProperties[MessageProperties.EventMessageId] = queuedEvent.MessageId;
        return message;
    }

    private ServiceBusException TooLarge(QueuedEvent queuedEvent, long maxBatchBytes) => new(
        $"Event {queuedEvent.MessageId} ({queuedEvent.Body.Length} bytes) does not fit in an empty batch of {maxBatchBytes} bytes.",
        ServiceBusFailureReason.MessageSizeExceeded,
        sender.EntityPath);
}
