using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Relay;

/// <summary>Queue trigger: reads the message and hands it to <see cref="RelaySettler"/>, which runs the processor and
/// settles on Service Bus (complete, schedule a copy + complete, or dead-letter).</summary>
public sealed class RelayFunction
{
    private readonly RelaySettler settler;
    private readonly IEventQueue queue;

    /// <summary>The worker activates function classes through their public constructors; the collaborators are
    /// internal, so it resolves them here.</summary>
    public RelayFunction(IServiceProvider services)
        : this(services.GetRequiredService<RelaySettler>(), services.GetRequiredService<IEventQueue>())
    {
    }

    internal RelayFunction(RelaySettler settler, IEventQueue queue)
    {
        this.settler = settler;
        this.queue = queue;
    }

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
