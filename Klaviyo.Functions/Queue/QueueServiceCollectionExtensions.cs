using Azure.Messaging.ServiceBus;
using Microsoft.Extensions.Azure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Queue;

/// <summary>The Service Bus connection as an operator sets it (spec section 7); same connection name as the trigger.</summary>
public sealed class EventQueueOptions
{
    /// <summary><c>ServiceBus__fullyQualifiedNamespace</c>: <c>&lt;namespace&gt;.servicebus.windows.net</c>, reached with a managed identity.</summary>
    public string? FullyQualifiedNamespace { get; set; }

    /// <summary><c>ServiceBus__clientId</c>: the client id of a user-assigned identity (system-assigned when empty).</summary>
    public string? ClientId { get; set; }

    /// <summary><c>ServiceBus</c>: a connection string, used when no namespace is set. Never logged.</summary>
    public string? ConnectionString { get; set; }

    /// <summary><c>EventsQueueName</c>, default <c>klaviyo-events</c>.</summary>
    public string QueueName { get; set; } = MessageProperties.DefaultQueueName;

    public bool UsesIdentity => !string.IsNullOrWhiteSpace(FullyQualifiedNamespace);

    public static EventQueueOptions From(IConfiguration configuration)
    {
        var section = configuration.GetSection(MessageProperties.ConnectionName);
        var queueName = configuration["EventsQueueName"];
        return new EventQueueOptions
        {
            FullyQualifiedNamespace = section["fullyQualifiedNamespace"],
            ClientId = section["clientId"],
            ConnectionString = section.Value,
            QueueName = string.IsNullOrWhiteSpace(queueName) ? MessageProperties.DefaultQueueName : queueName.Trim(),
        };
    }

    public override string ToString() =>
        $"EventQueueOptions {{ QueueName = {QueueName}, FullyQualifiedNamespace = {FullyQualifiedNamespace}, ClientId = {ClientId}, ConnectionString = {(string.IsNullOrEmpty(ConnectionString) ? "(none)" : "***")} }}";
}

public sealed class EventQueueOptionsValidator : IValidateOptions<EventQueueOptions>
{
    public ValidateOptionsResult Validate(string? name, EventQueueOptions options)
    {
        if (!options.UsesIdentity && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            return ValidateOptionsResult.Fail(
                "ServiceBus__fullyQualifiedNamespace (managed identity) or ServiceBus (a connection string) is required");
        }
        return ValidateOptionsResult.Success;
    }
}

public static class QueueServiceCollectionExtensions
{
    /// <summary>
    /// Registers one <see cref="ServiceBusClient"/> (Microsoft.Extensions.Azure), a <see cref="ServiceBusSender"/> for
    /// the events queue and <see cref="IEventQueue"/> over it. Identity-based when <c>ServiceBus__fullyQualifiedNamespace</c>
    /// is set (in Azure the managed identity, <c>ServiceBus__clientId</c> for a user-assigned one; locally
    /// <c>DefaultAzureCredential</c>: <see cref="AzureCredentials"/>), otherwise the
    /// connection string in <c>ServiceBus</c>; neither fails start-up.
    /// </summary>
    public static IServiceCollection AddEventQueue(this IServiceCollection services, IConfiguration configuration)
    {
        var settings = EventQueueOptions.From(configuration);
        services.AddOptions<EventQueueOptions>()
            .Configure(options =>
            {
                options.FullyQualifiedNamespace = settings.FullyQualifiedNamespace;
                options.ClientId = settings.ClientId;
                options.ConnectionString = settings.ConnectionString;
                options.QueueName = settings.QueueName;
            })
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EventQueueOptions>, EventQueueOptionsValidator>());

        if (settings.UsesIdentity)
        {
            services.AddAzureClients(clients => clients
                .AddServiceBusClientWithNamespace(settings.FullyQualifiedNamespace!.Trim())
                .WithCredential(AzureCredentials.Create(configuration, settings.ClientId)));
        }
        else if (!string.IsNullOrWhiteSpace(settings.ConnectionString))
        {
            services.AddAzureClients(clients => clients.AddServiceBusClient(settings.ConnectionString));
        }

        services.TryAddSingleton(provider => provider.GetRequiredService<ServiceBusClient>().CreateSender(
            provider.GetRequiredService<IOptions<EventQueueOptions>>().Value.QueueName));
        services.TryAddSingleton<IEventQueue>(provider => new ServiceBusEventQueue(provider.GetRequiredService<ServiceBusSender>()));
        return services;
    }
}
