namespace Klaviyo.Functions.Relay;

/// <summary>
/// The queue actions an outcome turns into (spec section 6), for one queue: Service Bus
/// (<see cref="ServiceBusSettlement"/>) or local mode's SQLite queue. Arrays, so a bulk relay settles a whole batch
/// with one call; <see cref="DeferAsync"/> parks messages until something else settles them.
/// </summary>
/// <typeparam name="TMessage">The queue's handle of a received message.</typeparam>
internal interface IRelaySettlement<in TMessage>
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
}

/// <summary>One received message as the relay reads it, whatever the queue.</summary>
/// <param name="EventMessageId">The event's own messageId (for logs and Klaviyo's <c>unique_id</c>).</param>
/// <param name="Body">The event as UTF-8 JSON.</param>
/// <param name="Attempt">1-based attempt of this delivery.</param>
internal readonly record struct RelayDelivery<TMessage>(TMessage Message, string EventMessageId, ReadOnlyMemory<byte> Body, int Attempt);
