namespace Klaviyo.Functions.Relay;

/// <summary>
/// The queue actions an outcome turns into (spec section 6), for one queue: Service Bus
/// (<see cref="ServiceBusSettlement"/>) or local mode's SQLite queue. Arrays, so a bulk relay settles a whole batch
/// with one call; <see cref="DeferAsync"/> parks messages until something else settles them.
/// </summary>
/// <typeparam name="TMessage">The queue's handle of a received message.</typeparam>
internal interface IRelaySettlement<TMessage>
{
    /// <summary>Delivered or deliberately skipped: remove from the queue.</summary>
    Task CompleteAsync(IReadOnlyList<TMessage> messages, CancellationToken cancellationToken);

    /// <summary>Make each message visible again at <paramref name="due"/> as attempt <paramref name="nextAttempt"/>
    /// (under <see cref="RelayMessage.RetryMessageId"/>), then remove the original: never the second without the first.</summary>
    Task RetryAsync(IReadOnlyList<TMessage> messages, int nextAttempt, DateTimeOffset due, CancellationToken cancellationToken);

    /// <summary>Move to the dead letters with a reason and a description a person can act on.</summary>
    Task DeadLetterAsync(IReadOnlyList<TMessage> messages, string reason, string? description, CancellationToken cancellationToken);

    /// <summary>Give back after a settlement call failed: delivered again (on Service Bus an abandon, which spends one
    /// delivery count), with <paramref name="properties"/> recording why where the queue keeps them.</summary>
    Task GiveBackAsync(IReadOnlyList<TMessage> messages, IDictionary<string, object> properties, CancellationToken cancellationToken);

    /// <summary>Park: kept, not handed out again, until settled later by whoever parked it.</summary>
    Task DeferAsync(IReadOnlyList<TMessage> messages, CancellationToken cancellationToken);

    /// <summary>Keep for the caller's next batch (<see cref="RelayOutcome.Gathered"/>): still held, its lock renewed;
    /// a queue that cannot keep messages between batches does not offer gathering.</summary>
    Task GatherAsync(IReadOnlyList<TMessage> messages, CancellationToken cancellationToken);

    /// <summary>Takes parked messages back by sequence number, locked for settling; those already settled are absent,
    /// and so are those locked now (by another run, or one that died), as Service Bus answers <c>MessageNotFound</c> for
    /// both. A failure part way releases what it took (parked again) before it throws.</summary>
    Task<IReadOnlyList<RelayDelivery<TMessage>>> ReceiveDeferredAsync(IReadOnlyList<long> sequences, CancellationToken cancellationToken);

    /// <summary>Which of <paramref name="sequences"/> are still parked (locked or not): a tracker is done only when none is.</summary>
    Task<IReadOnlySet<long>> StillParkedAsync(IReadOnlyList<long> sequences, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="max"/> messages parked before <paramref name="before"/> and not locked now, oldest
    /// first: what <see cref="ParkedSweeper"/> drives again once no tracker can still hold them.</summary>
    Task<IReadOnlyList<long>> ParkedBeforeAsync(DateTimeOffset before, int max, CancellationToken cancellationToken);

    /// <summary>Puts a new message on the queue, visible at <paramref name="due"/> (an import job's tracker).</summary>
    Task SendLaterAsync(Queue.QueuedEvent message, DateTimeOffset due, CancellationToken cancellationToken);
}

/// <summary>One received message as the relay reads it, whatever the queue.</summary>
/// <param name="EventMessageId">The event's own messageId (for logs and Klaviyo's <c>unique_id</c>).</param>
/// <param name="Body">The event as UTF-8 JSON.</param>
/// <param name="Attempt">1-based attempt of this delivery.</param>
/// <param name="Sequence">The queue's sequence number of the message (to take it back once parked).</param>
/// <param name="Subject">The message's subject: the event type, or <see cref="RelayMessage.ImportJobSubject"/> for a tracker.</param>
/// <param name="Ordering">The ordering key and arrival of an ordered event (spec 10), its sequence always set; null otherwise.</param>
/// <param name="WaitingSince">When it was first held back for a fuller call; null when it never was.</param>
internal readonly record struct RelayDelivery<TMessage>(TMessage Message, string EventMessageId, ReadOnlyMemory<byte> Body, int Attempt, long Sequence = 0, string Subject = "",
    Queue.OrderingStamp? Ordering = null, DateTimeOffset? WaitingSince = null);
