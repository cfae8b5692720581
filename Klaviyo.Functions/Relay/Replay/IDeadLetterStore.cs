using Azure.Messaging.ServiceBus;

namespace Klaviyo.Functions.Relay;

/// <summary>One dead-lettered message as the replay sees it.</summary>
internal sealed record DeadLetteredMessage(
    string MessageId,
    string? Subject,
    ReadOnlyMemory<byte> Body,
    string? Reason,
    string? Description,
    long SequenceNumber,
    IReadOnlyDictionary<string, object> Properties);

/// <summary>The events queue's dead-letter sub-queue, kept small so the replay tests without a broker.</summary>
internal interface IDeadLetterStore
{
    Task<IDeadLetterReader> OpenAsync(CancellationToken cancellationToken);
}

/// <summary>
/// A locked read of dead letters. Messages received stay locked (and are not handed out again) until removed;
/// disposing releases every message that was received but not removed, unchanged.
/// </summary>
internal interface IDeadLetterReader : IAsyncDisposable
{
    /// <summary>Up to <paramref name="maxMessages"/> more dead letters; empty when there are no more.</summary>
    Task<IReadOnlyList<DeadLetteredMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken);

    /// <summary>Deletes a received dead letter (after its copy is safely on the queue).</summary>
    Task RemoveAsync(DeadLetteredMessage message, CancellationToken cancellationToken);
}

/// <summary>Service Bus implementation: a peek-lock receiver on <c>&lt;queue&gt;/$deadletterqueue</c>.</summary>
internal sealed class ServiceBusDeadLetterStore(ServiceBusClient client, string queueName) : IDeadLetterStore
{
    public Task<IDeadLetterReader> OpenAsync(CancellationToken cancellationToken)
    {
        var receiver = client.CreateReceiver(queueName, new ServiceBusReceiverOptions
        {
            SubQueue = SubQueue.DeadLetter,
            ReceiveMode = ServiceBusReceiveMode.PeekLock,
            PrefetchCount = 0,
        });
        return Task.FromResult<IDeadLetterReader>(new Reader(receiver));
    }

    private sealed class Reader(ServiceBusReceiver receiver) : IDeadLetterReader
    {
        private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(2);
        private readonly Dictionary<long, ServiceBusReceivedMessage> _held = [];

        public async Task<IReadOnlyList<DeadLetteredMessage>> ReceiveAsync(int maxMessages, CancellationToken cancellationToken)
        {
            var messages = await receiver.ReceiveMessagesAsync(maxMessages, MaxWait, cancellationToken).ConfigureAwait(false);
            var result = new List<DeadLetteredMessage>(messages.Count);
            foreach (var message in messages)
            {
                _held[message.SequenceNumber] = message;
                result.Add(new DeadLetteredMessage(
                    message.MessageId, message.Subject, message.Body.ToMemory(), message.DeadLetterReason,
                    message.DeadLetterErrorDescription, message.SequenceNumber, message.ApplicationProperties));
            }
            return result;
        }

        public async Task RemoveAsync(DeadLetteredMessage message, CancellationToken cancellationToken)
        {
            await receiver.CompleteMessageAsync(_held[message.SequenceNumber], cancellationToken).ConfigureAwait(false);
            _held.Remove(message.SequenceNumber);
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var message in _held.Values)
            {
                try
                {
                    await receiver.AbandonMessageAsync(message).ConfigureAwait(false);
                }
                catch (ServiceBusException)
                {
                    // The lock lapses on its own; the message stays in the dead-letter queue either way.
                }
            }
            await receiver.DisposeAsync().ConfigureAwait(false);
        }
    }
}
