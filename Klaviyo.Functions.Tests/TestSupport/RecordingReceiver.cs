using Azure.Messaging.ServiceBus;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// The receiver a tracker takes deferred messages back with, behaving like the broker: holds what
/// <see cref="RecordingMessageActions"/> deferred and hands them out by sequence number, locked to this receiver; a call
/// naming one that is missing or locked (by this receiver, or by another through <see cref="LockElsewhere"/>) fails whole
/// with <c>MessageNotFound</c>. Deferring a taken-back message again releases its lock, and so does
/// <see cref="LapseLocks"/> (the lock ran out). Peeking shows the deferred messages, locked or not, in sequence order.
/// Records how each was settled. Built through the protected constructor the SDK keeps for tests.
/// </summary>
internal sealed class RecordingReceiver : ServiceBusReceiver
{
    private readonly SortedDictionary<long, ServiceBusReceivedMessage> _deferred = [];
    private readonly Dictionary<long, DateTimeOffset> _deferredAt = [];
    private readonly HashSet<long> _locked = [];
    private readonly List<Settlement> _calls = [];
    private int _receiveCalls;

    /// <summary>Actions ("Complete", "DeadLetter") that throw after being recorded: a broker refusing the call.</summary>
    public Dictionary<string, Exception> Throws { get; } = [];

    /// <summary>The 1-based <see cref="ReceiveDeferredMessagesAsync"/> call that fails with <c>ServiceBusy</c>.</summary>
    public int? FailReceiveCall { get; set; }

    public void Hold(IEnumerable<ServiceBusReceivedMessage> deferred, DateTimeOffset? deferredAt = null)
    {
        lock (_calls)
        {
            foreach (var message in deferred)
            {
                _deferred[message.SequenceNumber] = message;
                if (deferredAt is { } at)
                {
                    _deferredAt[message.SequenceNumber] = at;
                }
            }
        }
    }

    /// <summary>Another receiver (or a run that died) holds these locked.</summary>
    public void LockElsewhere(IEnumerable<long> sequences)
    {
        lock (_calls)
        {
            _locked.UnionWith(sequences);
        }
    }

    /// <summary>Every lock has run out: the messages are deferred again, free to take back.</summary>
    public void LapseLocks()
    {
        lock (_calls)
        {
            _locked.Clear();
        }
    }

    public IReadOnlyList<Settlement> Calls
    {
        get
        {
            lock (_calls)
            {
                return [.. _calls];
            }
        }
    }

    public int StillDeferred
    {
        get
        {
            lock (_calls)
            {
                return _deferred.Count;
            }
        }
    }

    public int Locked
    {
        get
        {
            lock (_calls)
            {
                return _locked.Count;
            }
        }
    }

    public override Task<IReadOnlyList<ServiceBusReceivedMessage>> ReceiveDeferredMessagesAsync(IEnumerable<long> sequenceNumbers, CancellationToken cancellationToken = default)
    {
        lock (_calls)
        {
            if (++_receiveCalls == FailReceiveCall)
            {
                throw new ServiceBusException("The service was busy.", ServiceBusFailureReason.ServiceBusy);
            }
            var wanted = sequenceNumbers.ToList();
            if (wanted.Any(s => !_deferred.ContainsKey(s) || _locked.Contains(s)))
            {
                throw new ServiceBusException("Failed to lock one or more specified messages. Either the message is not found or it has already been settled.", ServiceBusFailureReason.MessageNotFound);
            }
            _locked.UnionWith(wanted);
            return Task.FromResult<IReadOnlyList<ServiceBusReceivedMessage>>(wanted.Select(s => _deferred[s]).ToList());
        }
    }

    public override Task<IReadOnlyList<ServiceBusReceivedMessage>> PeekMessagesAsync(int maxMessages, long? fromSequenceNumber = null, CancellationToken cancellationToken = default)
    {
        lock (_calls)
        {
            return Task.FromResult<IReadOnlyList<ServiceBusReceivedMessage>>(_deferred
                .Where(d => d.Key >= (fromSequenceNumber ?? 0))
                .Take(maxMessages)
                .Select(d => AsPeeked(d.Value, _deferredAt.TryGetValue(d.Key, out var at) ? at : null))
                .ToList());
        }
    }

    public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default) =>
        Settle(new Settlement("Complete", message.MessageId, null, null), message);

    public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, string deadLetterReason, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default) =>
        Settle(new Settlement("DeadLetter", message.MessageId, deadLetterReason, deadLetterErrorDescription), message);

    public override Task DeferMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        lock (_calls)
        {
            _calls.Add(new Settlement("Defer", message.MessageId, null, null));
            _locked.Remove(message.SequenceNumber);
        }
        return Task.CompletedTask;
    }

    private Task Settle(Settlement settlement, ServiceBusReceivedMessage message)
    {
        lock (_calls)
        {
            _calls.Add(settlement);
            if (Throws.TryGetValue(settlement.Action, out var failure))
            {
                return Task.FromException(failure);
            }
            if (!_locked.Contains(message.SequenceNumber))
            {
                return Task.FromException(new ServiceBusException("The lock supplied is invalid.", ServiceBusFailureReason.MessageLockLost));
            }
            _deferred.Remove(message.SequenceNumber);
            _locked.Remove(message.SequenceNumber);
        }
        return Task.CompletedTask;
    }

    private static ServiceBusReceivedMessage AsPeeked(ServiceBusReceivedMessage message, DateTimeOffset? deferredAt)
    {
        var properties = new Dictionary<string, object>(message.ApplicationProperties);
        if (deferredAt is { } at)
        {
            properties[global::Klaviyo.Functions.Relay.ServiceBusSettlement.DeferredAtProperty] = at.ToUnixTimeMilliseconds();
        }
        return ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: message.Body, messageId: message.MessageId, subject: message.Subject, properties: properties,
            sequenceNumber: message.SequenceNumber, enqueuedTime: message.EnqueuedTime, serviceBusMessageState: ServiceBusMessageState.Deferred);
    }
}
