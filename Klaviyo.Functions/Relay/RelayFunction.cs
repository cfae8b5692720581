using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Relay;

/// <summary>Queue trigger, in batches (spec 8.1): reads the messages and hands them to <see cref="RelaySettler"/>, which
/// decides the whole batch and settles every message on its own on Service Bus (complete, schedule a copy + complete,
/// defer for an import job or for a fuller call, or dead-letter). The batch options are in host.json (docs explain each value).</summary>
public sealed class RelayFunction
{
    private readonly RelaySettler settler;
    private readonly IEventQueue queue;
    private readonly Func<ServiceBusReceiver>? deferred;
    private readonly ParkedSweeper? sweeper;
    private readonly TimeProvider? time;
    private readonly GatheredParking? parking;

    /// <summary>The worker activates function classes through their public constructors; the collaborators are
    /// internal, so it resolves them here.</summary>
    public RelayFunction(IServiceProvider services)
        : this(services.GetRequiredService<RelaySettler>(), services.GetRequiredService<IEventQueue>(), services.GetService<DeferredReceiver>() is { } receiver ? () => receiver.Receiver : null,
            services.GetService<ParkedSweeper>(), services.GetService<TimeProvider>(), services.GetService<GatheredParking>())
    {
    }

    internal RelayFunction(RelaySettler settler, IEventQueue queue, Func<ServiceBusReceiver>? deferred = null, ParkedSweeper? sweeper = null, TimeProvider? time = null,
        GatheredParking? parking = null)
    {
        this.settler = settler;
        this.queue = queue;
        this.deferred = deferred;
        this.sweeper = sweeper;
        this.time = time;
        this.parking = parking;
    }

    public const string Name = "Relay";

    /// <remarks>After the batch, at most every <see cref="ParkedSweeper.Interval"/> per instance, parked messages no
    /// tracker holds any more are driven again (a deferred message never expires on its own).</remarks>
    [Function(Name)]
    public async Task RunAsync(
        [ServiceBusTrigger("%EventsQueueName%", Connection = MessageProperties.ConnectionName, AutoCompleteMessages = false, IsBatched = true)]
        ServiceBusReceivedMessage[] messages,
        ServiceBusMessageActions actions,
        CancellationToken cancellationToken)
    {
        var settlement = new ServiceBusSettlement(actions, queue, deferred, time, parking);
        var deliveries = messages.Select(ServiceBusSettlement.Delivery).ToList();
        if (settlement.CanGather && parking!.TakeAll() is { Count: > 0 } gathered)
        {
            // What this instance held back for fuller calls rides with this batch; what cannot be taken back now (locked
            // by another instance's marker, or the receive failed) is left to its marker.
            deliveries.InsertRange(0, await settler.TakeBackAsync(settlement, gathered, cancellationToken).ConfigureAwait(false));
        }
        await settler.RelayBatchAsync(settlement, deliveries, cancellationToken, gather: settlement.CanGather).ConfigureAwait(false);
        if (sweeper is not null && deferred is not null)
        {
            await sweeper.SweepIfDueAsync(settlement, cancellationToken).ConfigureAwait(false);
        }
    }
}

/// <summary>The receiver that takes deferred messages back (an import job's tracker settles them): one per app, made on
/// first use, on the events queue.</summary>
internal sealed class DeferredReceiver(Func<ServiceBusClient> client, string queueName) : IAsyncDisposable, IDisposable
{
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private readonly Lazy<ServiceBusReceiver> _receiver = new(() => client().CreateReceiver(queueName));

    public ServiceBusReceiver Receiver => _receiver.Value;

    public async ValueTask DisposeAsync()
    {
        if (_receiver.IsValueCreated)
        {
            await _receiver.Value.DisposeAsync().ConfigureAwait(false);
        }
    }
}
