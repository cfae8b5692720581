namespace Klaviyo.Functions.Queue;

/// <summary>Application-property names and fixed values of queue messages, in one place.</summary>
internal static class MessageProperties
{
    /// <summary>The relay attempt number (int, 1-based). Absent means 1.</summary>
    public const string Attempt = "attempt";

    /// <summary>The event's own <c>messageId</c> (the copy scheduled for a retry has its own Service Bus MessageId).</summary>
    public const string EventMessageId = "eventMessageId";

    /// <summary>The per-profile ordering key of an ordered event (spec 10); absent on events that are never held.</summary>
    public const string OrderingKey = "orderingKey";

    /// <summary>The ingest's receivedAt of an ordered event (long, Unix milliseconds): its arrival, kept by its copies.</summary>
    public const string ReceivedAt = "receivedAt";

    /// <summary>The sequence number of the original message (long), set on the copies of an ordered event: its arrival
    /// position after <see cref="ReceivedAt"/>, which a copy's own sequence number is not.</summary>
    public const string ArrivalSequence = "arrivalSequence";

    public const string JsonContentType = "application/json";

    /// <summary>The app setting naming the events queue. Required and used as written: the Relay trigger reads it as
    /// <c>%EventsQueueName%</c>, which has no default, and the sender and dead-letter replay read it through
    /// <see cref="EventQueueOptions.From"/>, so all three use the same queue.</summary>
    public const string QueueNameSetting = "EventsQueueName";

    /// <summary>The Service Bus connection name shared by trigger and sender (<c>ServiceBus</c>, <c>ServiceBus__fullyQualifiedNamespace</c>).</summary>
    public const string ConnectionName = "ServiceBus";
}
