using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Microsoft.Azure.Functions.Worker;

namespace Klaviyo.Functions.Relay;

/// <summary>Queue trigger: reads the message and hands it to <see cref="RelaySettler"/>, which runs the processor and
/// settles on Service Bus (complete, schedule a copy + complete, or dead-letter).</summary>
public sealed class RelayFunction(RelaySettler settler, IEventQueue queue)
{
    public const string Name = "Relay";

    [Function(Name)]
    public Task RunAsync(
        [ServiceBusTrigger("%EventsQueueName%", Connection = MessageProperties.ConnectionName, AutoCompleteMessages = false)]
        ServiceBusReceivedMessage message,
        ServiceBusMessageActions actions,
        CancellationToken cancellationToken) =>
        settler.RelayAsync(
            new ServiceBusSettlement(actions, queue),
            new RelayDelivery<ServiceBusReceivedMessage>(message, RelayMessage.EventMessageId(message), message.Body.ToMemory(), RelayMessage.Attempt(message)),
            cancellationToken);
}
