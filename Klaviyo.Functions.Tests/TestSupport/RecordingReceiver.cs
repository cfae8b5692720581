using Azure.Messaging.ServiceBus;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// The receiver a tracker takes deferred messages back with: holds what <see cref="RecordingMessageActions"/> deferred,
/// hands them out by sequence number (a missing one fails the call with <c>MessageNotFound</c>, as Service Bus does),
/// and records how each was settled. Built through the protected constructor the SDK keeps for tests.
/// </summary>
internal sealed class RecordingReceiver : ServiceBusReceiver
{
    private readonly Dictionary<long, ServiceBusReceivedMessage> _deferred = [];
    private readonly List<Settlement> _calls = [];

    public void Hold(IEnumerable<ServiceBusReceivedMessage> deferred)
    {
        lock (_calls)
        {
            foreach (var message in deferred)
            {
                _deferred[message.SequenceNumber] = message;
            }
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

    public override Task<IReadOnlyList<ServiceBusReceivedMessage>> ReceiveDeferredMessagesAsync(IEnumerable<long> sequenceNumbers, CancellationToken cancellationToken = default)
    {
        lock (_calls)
        {
            var wanted = sequenceNumbers.ToList();
            if (wanted.Any(s => !_deferred.ContainsKey(s)))
            {
                throw new ServiceBusException("Failed to lock one or more specified messages. Either the message is not found or it has already been settled.", ServiceBusFailureReason.MessageNotFound);
            }
            return Task.FromResult<IReadOnlyList<ServiceBusReceivedMessage>>(wanted.Select(s => _deferred[s]).ToList());
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
        }
        return Task.CompletedTask;
    }

    private Task Settle(Settlement settlement, ServiceBusReceivedMessage message)
    {
        lock (_calls)
        {
            _calls.Add(settlement);
            _deferred.Remove(message.SequenceNumber);
        }
        return Task.CompletedTask;
    }
}
