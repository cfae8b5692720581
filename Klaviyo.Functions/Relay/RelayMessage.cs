using System.Globalization;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;

namespace Klaviyo.Functions.Relay;

/// <summary>Reads and names relay messages: attempt property, the event's own messageId, ids of retry and replay copies.</summary>
public static class RelayMessage
{
    private const string AttemptSuffix = "/attempt-";
    private const string ReplaySuffix = "/replay-";
    private const string PutOffSuffix = "/wait-";

    /// <summary>The attempt in <see cref="MessageProperties.Attempt"/>; absent or unreadable means 1.</summary>
    public static int Attempt(IReadOnlyDictionary<string, object> properties)
    {
        if (!properties.TryGetValue(MessageProperties.Attempt, out var value))
        {
            return 1;
        }
        var attempt = value switch
        {
            int i => i,
            long l when l is > 0 and <= int.MaxValue => (int)l,
            string s when int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) => parsed,
            _ => 1,
        };
        return Math.Max(1, attempt);
    }

    /// <summary>The event's messageId: the <see cref="MessageProperties.EventMessageId"/> property, else the Service Bus
    /// MessageId without its <c>/attempt-n</c> and <c>/replay-n</c> suffixes.</summary>
    public static string EventMessageId(string? serviceBusMessageId, IReadOnlyDictionary<string, object> properties)
    {
        if (properties.TryGetValue(MessageProperties.EventMessageId, out var value) && value is string { Length: > 0 } id)
        {
            return id;
        }
        return StripSuffix(StripSuffix(StripSuffix(serviceBusMessageId ?? "", AttemptSuffix), PutOffSuffix), ReplaySuffix);
    }

    public static string EventMessageId(ServiceBusReceivedMessage message) => EventMessageId(message.MessageId, message.ApplicationProperties);

    public static int Attempt(ServiceBusReceivedMessage message) => Attempt(message.ApplicationProperties);

    /// <summary>
    /// The copy for attempt <paramref name="nextAttempt"/> needs its own id, because the queue drops duplicate MessageIds.
    /// It keeps a <c>/replay-n</c> part, so a replayed event's retries never collide with those of its first life.
    /// </summary>
    public static string RetryMessageId(string serviceBusMessageId, int nextAttempt) =>
        $"{StripSuffix(serviceBusMessageId, AttemptSuffix)}{AttemptSuffix}{nextAttempt.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// The copy of a delivery put off without spending its attempt: the attempt's own id would be this message's id,
    /// which the queue would drop as a duplicate. Keyed on this message's sequence number, so a redelivery of it
    /// schedules the same id (dropped) rather than a second copy; an earlier <c>/wait-n</c> part is replaced.
    /// </summary>
    public static string PutOffMessageId(string serviceBusMessageId, long sequenceNumber, int attempt) =>
        $"{StripSuffix(StripSuffix(serviceBusMessageId, AttemptSuffix), PutOffSuffix)}{PutOffSuffix}{sequenceNumber.ToString(CultureInfo.InvariantCulture)}{AttemptSuffix}{attempt.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Keyed on the dead letter's sequence number, so running a replay twice cannot enqueue the same dead letter twice.</summary>
    public static string ReplayMessageId(string eventMessageId, long deadLetterSequenceNumber) =>
        $"{eventMessageId}{ReplaySuffix}{deadLetterSequenceNumber.ToString(CultureInfo.InvariantCulture)}";

    private static string StripSuffix(string messageId, string suffix)
    {
        var at = messageId.LastIndexOf(suffix, StringComparison.Ordinal);
        if (at <= 0)
        {
            return messageId;
        }
        var number = messageId.AsSpan(at + suffix.Length);
        return number.Length > 0 && !number.ContainsAnyExceptInRange('0', '9') ? messageId[..at] : messageId;
    }
}
