using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Tests.Queue;

[TestClass]
public sealed class QueueServiceCollectionExtensionsTests
{
    private const string ConnectionString = "Endpoint=sb://relay-test.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0";

    private static ServiceProvider Build(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection().AddEventQueue(configuration).BuildServiceProvider();
    }

    [TestMethod]
    public async Task AddEventQueue_ConnectionString_RegistersClientSenderAndQueue()
    {
        await using var provider = Build(new() { ["ServiceBus"] = ConnectionString, ["EventsQueueName"] = "klaviyo-events" });

        var client = provider.GetRequiredService<ServiceBusClient>();
        var sender = provider.GetRequiredService<ServiceBusSender>();

        Assert.AreEqual("relay-test.servicebus.windows.net", client.FullyQualifiedNamespace);
        Assert.AreEqual("klaviyo-events", sender.EntityPath);
        Assert.IsInstanceOfType<ServiceBusEventQueue>(provider.GetRequiredService<IEventQueue>());
        Assert.AreSame(client, provider.GetRequiredService<ServiceBusClient>());
    }

    [TestMethod]
    public async Task AddEventQueue_FullyQualifiedNamespace_UsesIdentityAndQueueName()
    {
        await using var provider = Build(new()
        {
            ["ServiceBus:fullyQualifiedNamespace"] = "relay-prod.servicebus.windows.net",
            ["ServiceBus:clientId"] = "00000000-0000-0000-0000-000000000001",
            ["EventsQueueName"] = "shop-events",
        });

        var client = provider.GetRequiredService<ServiceBusClient>();

        Assert.AreEqual("relay-prod.servicebus.windows.net", client.FullyQualifiedNamespace);
        Assert.AreEqual("shop-events", provider.GetRequiredService<ServiceBusSender>().EntityPath);
        var options = provider.GetRequiredService<IOptions<EventQueueOptions>>().Value;
        Assert.IsTrue(options.UsesIdentity);
        Assert.AreEqual("00000000-0000-0000-0000-000000000001", options.ClientId);
    }

    [TestMethod]
    public async Task AddEventQueue_NoConnection_FailsValidationNamingBothSettings()
    {
        await using var provider = Build([]);

        var ex = Assert.ThrowsExactly<OptionsValidationException>(() => provider.GetRequiredService<IOptions<EventQueueOptions>>().Value);

        Assert.Contains("ServiceBus__fullyQualifiedNamespace", ex.Message);
        Assert.Contains("ServiceBus (a connection string)", ex.Message);
    }

    [TestMethod]
    public async Task AddEventQueue_NoQueueName_FailsNamingTheSettingTheTriggerReads()
    {
        // The trigger's %EventsQueueName% has no default, so a default here would send where nothing listens.
        await using var provider = Build(new() { ["ServiceBus"] = ConnectionString });

        var ex = Assert.ThrowsExactly<OptionsValidationException>(() => provider.GetRequiredService<IOptions<EventQueueOptions>>().Value);

        Assert.StartsWith("EventsQueueName is required", ex.Failures.Single());
    }

    [TestMethod]
    [DataRow(" klaviyo-events")]
    [DataRow("klaviyo-events ")]
    public async Task AddEventQueue_QueueNameWithSurroundingSpace_IsRefusedNotTrimmed(string queueName)
    {
        // The trigger would use the name as written; trimming it here would send to another queue than it reads.
        await using var provider = Build(new() { ["ServiceBus"] = ConnectionString, ["EventsQueueName"] = queueName });

        var ex = Assert.ThrowsExactly<OptionsValidationException>(() => provider.GetRequiredService<ServiceBusSender>());

        Assert.StartsWith("EventsQueueName: ", ex.Failures.Single());
        Assert.Contains("white space", ex.Failures.Single());
    }

    [TestMethod]
    public async Task AddRelay_DeadLetterStore_ReadsTheSenderQueue()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ServiceBus"] = ConnectionString,
            ["EventsQueueName"] = "shop-events",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddEventQueue(configuration);
        services.AddRelay(configuration);
        var client = new FakeDeadLetterClient();
        services.AddSingleton<ServiceBusClient>(client);
        await using var provider = services.BuildServiceProvider();

        var reader = await provider.GetRequiredService<IDeadLetterStore>().OpenAsync(CancellationToken.None);
        await reader.DisposeAsync();

        Assert.AreEqual("shop-events", client.ReceiversCreated.Single().QueueName);
    }

    [TestMethod]
    public void EventQueueOptions_ToString_HidesConnectionString()
    {
        var options = new EventQueueOptions { ConnectionString = ConnectionString };

        Assert.DoesNotContain("c2VjcmV0", options.ToString());
    }
}
