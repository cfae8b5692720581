using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Tests.Ingest;

[TestClass]
public sealed class IngestServiceCollectionExtensionsTests
{
    private static ServiceProvider Build(Dictionary<string, string?> settings)
    {
        settings.TryAdd("Klaviyo:PrivateApiKey", "pk_test_0123456789");
        settings.TryAdd("EventsQueueName", "klaviyo-events");
        settings.TryAdd("ServiceBus", "Endpoint=sb://relay-test.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0");
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging();
        services.AddKlaviyoOptions();
        services.AddKlaviyoTransform();
        services.AddIngest(configuration);
        return services.BuildServiceProvider();
    }

    [TestMethod]
    public async Task AddIngest_WithSettings_ResolvesHandlerOverServiceBusQueue()
    {
        await using var provider = Build(new() { ["Ingest:SigningSecret"] = "s3cret", ["Ingest:MaxEventBytes"] = "65536" });

        _ = provider.GetRequiredService<IngestHandler>(); // throws naming a dependency that is not registered
        Assert.IsInstanceOfType<ServiceBusEventQueue>(provider.GetRequiredService<IEventQueue>());
        Assert.AreEqual("relay-test.servicebus.windows.net", provider.GetRequiredService<ServiceBusClient>().FullyQualifiedNamespace);
        Assert.IsTrue(provider.GetRequiredService<SignatureVerifier>().IsRequired);
        Assert.AreEqual(65536, provider.GetRequiredService<IOptions<IngestOptions>>().Value.MaxEventBytes);
    }

    [TestMethod]
    public async Task AddIngest_BadLimit_FailsNamingTheAppSetting()
    {
        await using var provider = Build(new() { ["Ingest:MaxRequestBytes"] = "10" });

        var ex = Assert.ThrowsExactly<OptionsValidationException>(() => provider.GetRequiredService<IOptions<IngestOptions>>().Value);

        Assert.Contains("Ingest__MaxRequestBytes", ex.Message);
    }
}
