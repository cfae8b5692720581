using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// A <see cref="ServiceBusClient"/> (protected mocking constructor) whose receivers read one in-memory dead-letter
/// queue with peek-lock semantics: a received message is locked until completed (gone) or abandoned (back).
/// </summary>
internal sealed class FakeDeadLetterClient : ServiceBusClient
{
    private long _sequence = 40;

    public List<ServiceBusReceivedMessage> DeadLetters { get; } = [];

    public HashSet<long> Locked { get; } = [];

    public List<(string QueueName, ServiceBusReceiverOptions Options)> ReceiversCreated { get; } = [];

    public List<long> Completed { get; } = [];

    public List<long> Abandoned { get; } = [];

    public List<int> ReceiveRequests { get; } = [];

    public int ReceiversDisposed { get; private set; }

    public FakeDeadLetterClient Add(string messageId, string reason, string json = """{"type":"track","messageId":"m"}""", IDictionary<string, object>? properties = null)
    {
        var all = new Dictionary<string, object>(properties ?? new Dictionary<string, object>())
        {
            ["DeadLetterReason"] = reason,
            ["DeadLetterErrorDescription"] = $"{reason} description",
        };
        DeadLetters.Add(ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: BinaryData.FromString(json),
            messageId: messageId,
            subject: "track",
            contentType: MessageProperties.JsonContentType,
            properties: all,
            lockTokenGuid: Guid.NewGuid(),
            deliveryCount: 1,
            sequenceNumber: ++_sequence));
        return this;
    }

    public override ServiceBusReceiver CreateReceiver(string queueName, ServiceBusReceiverOptions options)
    {
        ReceiversCreated.Add((queueName, options));
        return new Receiver(this);
    }

    private sealed class Receiver(FakeDeadLetterClient client) : ServiceBusReceiver
    {
        public override Task<IReadOnlyList<ServiceBusReceivedMessage>> ReceiveMessagesAsync(int maxMessages, TimeSpan? maxWaitTime = null, CancellationToken cancellationToken = default)
        {
            client.ReceiveRequests.Add(maxMessages);
            var batch = client.DeadLetters.Where(m => !client.Locked.Contains(m.SequenceNumber)).Take(maxMessages).ToList();
            client.Locked.UnionWith(batch.Select(m => m.SequenceNumber));
            return Task.FromResult<IReadOnlyList<ServiceBusReceivedMessage>>(batch);
        }

        public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
        {
            Settle(message);
            client.DeadLetters.Remove(message);
            client.Completed.Add(message.SequenceNumber);
            return Task.CompletedTask;
        }

        public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
        {
            Settle(message);
            client.Abandoned.Add(message.SequenceNumber);
            return Task.CompletedTask;
        }

        public override ValueTask DisposeAsync()
        {
            client.ReceiversDisposed++;
            return ValueTask.CompletedTask;
        }

        private void Settle(ServiceBusReceivedMessage message)
        {
            if (!client.Locked.Remove(message.SequenceNumber))
            {
                throw new ServiceBusException("lock lost", ServiceBusFailureReason.MessageLockLost);
            }
        }
    }
}
