namespace Klaviyo.Functions.Queue;

/// <summary>One event on its way to the queue: body = the event JSON (with <c>messageId</c> and <c>receivedAt</c>).</summary>
/// <param name="MessageId">The Service Bus <c>MessageId</c> (duplicate detection keys on it).</param>
/// <param name="Subject">The event type (<c>identify</c>, <c>track</c>, …).</param>
/// <param name="Body">UTF-8 JSON of the event.</param>
/// <param name="Attempt">The relay attempt this message starts (1 for a fresh event); carried in <see cref="MessageProperties.Attempt"/>.</param>
/// <param name="EventMessageId">The event's own <c>messageId</c> when <paramref name="MessageId"/> is that of a retry or
/// replay copy (<c>m-1/attempt-2</c>); null when they are the same. Carried in <see cref="MessageProperties.EventMessageId"/>.</param>
/// <param name="Ordering">The per-profile ordering key and arrival of an ordered event (spec 10); null for events that
/// are never held (track, screen, page) and for the relay's own messages.</param>
internal sealed record QueuedEvent(string MessageId, string Subject, ReadOnlyMemory<byte> Body, int Attempt = 1, string? EventMessageId = null, OrderingStamp? Ordering = null);

/// <summary>What the ordering barrier (spec 10) knows of an ordered event, fixed at the ingest and kept by every copy.</summary>
/// <param name="Key">userId, else anonymousId, else the lower-cased email, else the E.164 phone.</param>
/// <param name="ReceivedAtMs">The ingest's <c>receivedAt</c> (Unix milliseconds): the first part of the arrival position.</param>
/// <param name="Sequence">The queue sequence number of the original message (the second part); null until the queue
/// assigned one (a copy carries its original's).</param>
internal sealed record OrderingStamp(string Key, long ReceivedAtMs, long? Sequence = null);

/// <summary>
/// The events queue as the app sees it. Azure: a Service Bus queue (<c>ServiceBusEventQueue</c>); local mode: an
/// in-process queue. Kept small so functions and processors are tested without a broker.
/// </summary>
internal interface IEventQueue
{
    /// <summary>Enqueues every event, or throws: the caller answers 202 only after this completed.</summary>
    Task SendAsync(IReadOnlyList<QueuedEvent> events, CancellationToken cancellationToken = default);

    /// <summary>Schedules one event to become visible at <paramref name="enqueueAt"/> (a queue-level retry).</summary>
    Task ScheduleAsync(QueuedEvent queuedEvent, DateTimeOffset enqueueAt, CancellationToken cancellationToken = default);
}
