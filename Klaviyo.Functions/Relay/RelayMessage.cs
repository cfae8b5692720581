using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;

namespace Klaviyo.Functions.Relay;

/// <summary>Reads and names relay messages: attempt property, the event's own messageId, ids of retry and replay copies.</summary>
/// <remarks>
/// A copy's Service Bus MessageId always contains <see cref="Separator"/> (U+001F, a control character), which the
/// ingest refuses in a <c>messageId</c>. Every id a sender can choose therefore differs from every copy's id, so
/// duplicate detection never drops a copy because of a sender's id, nor an event because of a copy. Forms:
/// <c>&lt;messageId&gt;␟attempt-n</c>, <c>&lt;messageId&gt;␟replay-s</c>, <c>&lt;messageId&gt;␟replay-s␟attempt-n</c>;
/// a messageId longer than <see cref="MaxPlainEventIdLength"/> is replaced by <c>␟sha256:&lt;hex&gt;</c> so that
/// every copy id fits Service Bus's 128 characters.
/// </remarks>
internal static class RelayMessage
{
    /// <summary>Separates the event's id from a copy's lineage; the ingest refuses control characters in a messageId.</summary>
    public const char Separator = '\u001F';

    /// <summary>Longest messageId kept readable in a copy id: 128 less the longest lineage
    /// (<c>␟replay-</c> + 19 digits + <c>␟wait-</c> + 19 digits + <c>␟attempt-</c> + 10 digits = 71).</summary>
    public const int MaxPlainEventIdLength = ServiceBusEventQueue.MaxMessageIdLength - 71;

    /// <summary>Subject of an import job's tracker message (spec 8.3): the ingest only ever sets an event type.</summary>
    public const string ImportJobSubject = "import-job";

    /// <summary>Subject of the marker that takes back messages parked for a fuller call (<see cref="GatheredParking"/>).</summary>
    public const string GatheredSubject = "gathered";

    private const string AttemptPart = "attempt-";
    private const string ReplayPart = "replay-";
    private const string HashPart = "sha256:";
    private const string PutOffPart = "wait-";

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
    /// MessageId up to its first <see cref="Separator"/> (a sender's id, slashes and all, is its own).</summary>
    public static string EventMessageId(string? serviceBusMessageId, IReadOnlyDictionary<string, object> properties)
    {
        if (properties.TryGetValue(MessageProperties.EventMessageId, out var value) && value is string { Length: > 0 } id)
        {
            return id;
        }
        var messageId = serviceBusMessageId ?? "";
        var separator = messageId.IndexOf(Separator, StringComparison.Ordinal);
        return separator > 0 ? messageId[..separator] : messageId;
    }

    /// <summary>The ordering stamp an ordered event's message carries (spec 10), with its arrival sequence: the original's,
    /// carried by a copy, else <paramref name="sequenceNumber"/> (the message is the original). Null without a key.</summary>
    public static OrderingStamp? Ordering(IReadOnlyDictionary<string, object> properties, long sequenceNumber)
    {
        if (!properties.TryGetValue(MessageProperties.OrderingKey, out var key) || key is not string { Length: > 0 } text)
        {
            return null;
        }
        var receivedAt = properties.TryGetValue(MessageProperties.ReceivedAt, out var at) && at is long ms ? ms : 0;
        var sequence = properties.TryGetValue(MessageProperties.ArrivalSequence, out var original) && original is long first ? first : sequenceNumber;
        return new OrderingStamp(text, receivedAt, sequence);
    }

    public static string EventMessageId(ServiceBusReceivedMessage message) => EventMessageId(message.MessageId, message.ApplicationProperties);

    public static int Attempt(ServiceBusReceivedMessage message) => Attempt(message.ApplicationProperties);

    /// <summary>True for the MessageId of a retry or replay copy (never for an id a sender chose).</summary>
    public static bool IsCopy(string serviceBusMessageId) => serviceBusMessageId.Contains(Separator, StringComparison.Ordinal);

    /// <summary>
    /// The copy for attempt <paramref name="nextAttempt"/> needs its own id, because the queue drops duplicate MessageIds.
    /// A copy's id keeps its lineage up to the attempt (<c>␟replay-s</c>), so a replayed event's retries never collide
    /// with those of its first life; an original's id (the event's messageId) starts the lineage.
    /// </summary>
    public static string RetryMessageId(string serviceBusMessageId, int nextAttempt)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nextAttempt, 1);
        var lineage = IsCopy(serviceBusMessageId) ? WithoutAttempt(serviceBusMessageId) : Root(serviceBusMessageId);
        return $"{lineage}{Separator}{AttemptPart}{nextAttempt.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>
    /// The copy of a delivery put off without spending its attempt: the attempt's own id would be this message's id,
    /// which the queue would drop as a duplicate. Keyed on this message's sequence number, so a redelivery of it
    /// schedules the same id (dropped) rather than a second copy; an earlier <c>␟wait-n</c> part is replaced.
    /// </summary>
    public static string PutOffMessageId(string serviceBusMessageId, long sequenceNumber, int attempt)
    {
        var lineage = IsCopy(serviceBusMessageId) ? WithoutPart(WithoutPart(serviceBusMessageId, AttemptPart), PutOffPart) : Root(serviceBusMessageId);
        return $"{lineage}{Separator}{PutOffPart}{sequenceNumber.ToString(CultureInfo.InvariantCulture)}{Separator}{AttemptPart}{attempt.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>Keyed on the dead letter's sequence number, so running a replay twice cannot enqueue the same dead letter twice.</summary>
    public static string ReplayMessageId(string eventMessageId, long deadLetterSequenceNumber) =>
        deadLetterSequenceNumber < 0
            ? throw new ArgumentOutOfRangeException(nameof(deadLetterSequenceNumber), deadLetterSequenceNumber, "Sequence numbers are not negative.")
            : $"{Root(eventMessageId)}{Separator}{ReplayPart}{deadLetterSequenceNumber.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The id of poll <paramref name="poll"/> of a job's tracker: starts with <see cref="Separator"/>, so no
    /// sender's id can equal it; differs per poll, so duplicate detection keeps each; and carries the lowest sequence
    /// number the job parked, so two trackers never share an id even if two jobs did.</summary>
    public static string TrackerMessageId(string jobId, long firstSequence, int poll) =>
        $"{Separator}job-{Root(jobId)}" +
        $"{Separator}{firstSequence.ToString(CultureInfo.InvariantCulture)}{Separator}poll-{poll.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The id of a gathering marker: starts with <see cref="Separator"/> like a tracker's, and is keyed on the
    /// lowest sequence number it names and the time it was queued, so two markers never share an id.</summary>
    public static string GatheredMessageId(long firstSequence, DateTimeOffset at) =>
        $"{Separator}gathered-{firstSequence.ToString(CultureInfo.InvariantCulture)}{Separator}{at.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The event's id as the start of a copy's id: as it is when short enough, else <c>␟sha256:&lt;hex&gt;</c>
    /// (which starts with the separator, so it cannot be mistaken for a short id either).</summary>
    private static string Root(string eventMessageId) =>
        eventMessageId.Length <= MaxPlainEventIdLength
            ? eventMessageId
            : $"{Separator}{HashPart}{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(eventMessageId)))[..HashHexLength]}";

    /// <summary>192 bits of the hash: the hashed root (<c>␟sha256:</c> + 48) is no longer than a readable one.</summary>
    private const int HashHexLength = MaxPlainEventIdLength - 1 - 7;

    private static string WithoutAttempt(string copyMessageId) => WithoutPart(copyMessageId, AttemptPart);

    private static string WithoutPart(string copyMessageId, string part)
    {
        var at = copyMessageId.LastIndexOf(Separator);
        return at >= 0 && copyMessageId.AsSpan(at + 1).StartsWith(part, StringComparison.Ordinal) ? copyMessageId[..at] : copyMessageId;
    }
}
