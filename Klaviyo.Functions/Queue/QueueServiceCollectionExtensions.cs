using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Azure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Queue;

/// <summary>The Service Bus connection as an operator sets it (spec section 7); same connection name as the trigger.</summary>
internal sealed class EventQueueOptions
{
    /// <summary><c>ServiceBus__fullyQualifiedNamespace</c>: <c>&lt;namespace&gt;.servicebus.windows.net</c>, reached with a managed identity.</summary>
    public string? FullyQualifiedNamespace { get; set; }

    /// <summary><c>ServiceBus__clientId</c>: the client id of a user-assigned identity (system-assigned when empty).</summary>
    public string? ClientId { get; set; }

    /// <summary><c>ServiceBus</c>: a connection string, used when no namespace is set. Never logged.</summary>
    public string? ConnectionString { get; set; }

    /// <summary><c>EventsQueueName</c>: required, used as written (the trigger's <c>%EventsQueueName%</c> has no default).</summary>
    public string QueueName { get; set; } = "";

    public bool UsesIdentity => !string.IsNullOrWhiteSpace(FullyQualifiedNamespace);

    /// <summary>The one reading of the Service Bus settings, shared by the sender, dead-letter replay and health. Not a
    /// <c>BindConfiguration</c> section: the connection string is the <c>ServiceBus</c> section's own value and the queue
    /// name a top-level setting, both shaped by the Functions trigger that reads the same names.</summary>
    public static EventQueueOptions From(IConfiguration configuration)
    {
        var section = configuration.GetSection(MessageProperties.ConnectionName);
        return new EventQueueOptions
        {
            FullyQualifiedNamespace = section["fullyQualifiedNamespace"],
            ClientId = section["clientId"],
            ConnectionString = section.Value,
            QueueName = configuration[MessageProperties.QueueNameSetting] ?? "",
        };
    }

    public override string ToString() =>
        $"EventQueueOptions {{ QueueName = {QueueName}, FullyQualifiedNamespace = {FullyQualifiedNamespace}, ClientId = {ClientId}, ConnectionString = {(string.IsNullOrEmpty(ConnectionString) ? "(none)" : "***")} }}";
}

internal sealed class EventQueueOptionsValidator : IValidateOptions<EventQueueOptions>
{
    public ValidateOptionsResult Validate(string? name, EventQueueOptions options)
    {
        var failures = new List<string>();
        if (!options.UsesIdentity && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add("ServiceBus__fullyQualifiedNamespace (managed identity) or ServiceBus (a connection string) is required");
        }
        if (string.IsNullOrWhiteSpace(options.QueueName))
        {
            failures.Add($"{MessageProperties.QueueNameSetting} is required: the Relay trigger reads the queue as %{MessageProperties.QueueNameSetting}%, which has no default");
        }
        else if (options.QueueName.AsSpan().Trim().Length != options.QueueName.Length)
        {
            failures.Add($"{MessageProperties.QueueNameSetting}: '{options.QueueName}' must not begin or end with white space (the trigger uses it as written)");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

internal static class QueueServiceCollectionExtensions
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
