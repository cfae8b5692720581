using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Relay;

internal static class RelayFeatureServiceCollectionExtensions
{
    /// <summary>The app setting naming the events queue (shared with the trigger's <c>%EventsQueueName%</c>).</summary>
    public const string QueueNameSetting = MessageProperties.QueueNameSetting;

    /// <summary>Registers the relay processor, options, retry schedule, metrics and dead-letter replay, with Service Bus's
    /// dead-letter queue as the replay's store. <see cref="IEventQueue"/> and <see cref="ServiceBusClient"/> come from the queue feature.</summary>
    public static IServiceCollection AddRelay(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddRelayProcessing();
        services.AddOrderingBarrier(configuration);
        services.TryAddSingleton<IDeadLetterStore>(sp => new ServiceBusDeadLetterStore(
            sp.GetRequiredService<ServiceBusClient>(), sp.GetRequiredService<IOptions<EventQueueOptions>>().Value.QueueName));
        services.TryAddSingleton<GatheredParking>();
        services.TryAddSingleton(sp => new DeferredReceiver(
            sp.GetRequiredService<ServiceBusClient>, sp.GetRequiredService<IOptions<EventQueueOptions>>().Value.QueueName));
        return services;
    }

    /// <summary>The processor, the settler that turns its outcomes into queue actions, and the replay, for either host.
    /// Transient like the functions the host creates per invocation: the typed Klaviyo client they hold is transient.</summary>
    internal static IServiceCollection AddRelayProcessing(this IServiceCollection services)
    {
        services.AddRelayOptions();
        services.AddPrivacyOptions();
        services.AddRelayMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(new RetrySchedule());
        services.TryAddTransient<OutcomePolicy>();
        services.TryAddTransient<DeletionProcessor>();
        services.TryAddTransient<RelayProcessor>();
        services.TryAddTransient<BatchPlanner>();
        services.TryAddTransient<BulkRelayProcessor>();
        services.TryAddTransient<Bulk.ImportJobClient>();
        services.TryAddTransient<ImportJobTracker>();
        services.TryAddTransient<RelaySettler>();
        services.TryAddSingleton<ParkedSweeper>();
        services.TryAddTransient<DeadLetterReplayer>();
        return services;
    }
}
