using System.Reflection;
using Klaviyo.Functions.Health;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Local;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Transform;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Tests.Composition;

/// <summary>
/// The Functions host cannot run here, so this stands in for its start-up: the composition root the host uses
/// (<see cref="RelayServiceCollectionExtensions.AddKlaviyoRelay"/>) must build, and every class with a
/// <c>[Function]</c> method must be creatable from it, as the worker creates them.
/// </summary>
[TestClass]
public sealed class CompositionRootTests
{
    private static ServiceProvider BuildAzureServices(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddKlaviyoRelay(configuration);
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true, ValidateOnBuild = true });
    }

    private static Dictionary<string, string?> AzureSettings() => new()
    {
        ["Klaviyo:PrivateApiKey"] = "pk_composition_test",
        ["ServiceBus"] = "Endpoint=sb://relay-test.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0",
        ["EventsQueueName"] = "klaviyo-events",
    };

    public static IEnumerable<object[]> FunctionClasses() =>
        typeof(RelayServiceCollectionExtensions).Assembly.GetTypes()
            .Where(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance).Any(m => m.GetCustomAttribute<FunctionAttribute>() is not null))
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => new object[] { t.Name });

    [TestMethod]
    public void FunctionClasses_AreTheFourTheAppDeclares()
    {
        Assert.AreSequenceEqual(
            new[] { "HealthFunction", "IngestFunction", "RelayFunction", "ReplayDeadLettersFunction" },
            FunctionClasses().Select(row => (string)row[0]).ToArray());
    }

    [TestMethod]
    [DynamicData(nameof(FunctionClasses))]
    public async Task AddKlaviyoRelay_WithAzureSettings_CreatesEveryFunctionClass(string typeName)
    {
        await using var services = BuildAzureServices(AzureSettings());
        var type = typeof(RelayServiceCollectionExtensions).Assembly.GetTypes().Single(t => t.Name == typeName);

        _ = ActivatorUtilities.CreateInstance(services, type); // throws naming the first dependency that is not registered
    }

    [TestMethod]
    public async Task AddKlaviyoRelay_WithoutTheKlaviyoKey_FailsAtStartNamingTheSetting()
    {
        var settings = AzureSettings();
        settings.Remove("Klaviyo:PrivateApiKey");
        await using var services = BuildAzureServices(settings);

        var failure = Assert.ThrowsExactly<OptionsValidationException>(() => services.GetRequiredService<IOptions<KlaviyoOptions>>().Value);
        Assert.Contains("Klaviyo__PrivateApiKey is required", failure.Failures);
    }

    [TestMethod]
    public void BothHosts_ShareTheCoreRegistration_SameLifetimesAndOneClock()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(AzureSettings()).Build();
        var azure = new ServiceCollection();
        azure.AddKlaviyoRelay(configuration);
        var local = new ServiceCollection();
        local.AddRelayCore();
        local.AddLocalQueue();

        foreach (var type in new[] { typeof(RelayProcessor), typeof(RelaySettler), typeof(DeadLetterReplayer), typeof(IngestHandler), typeof(KlaviyoTransformer), typeof(RetrySchedule) })
        {
            Assert.AreEqual(azure.Single(d => d.ServiceType == type).Lifetime, local.Single(d => d.ServiceType == type).Lifetime, type.Name);
        }
        Assert.HasCount(1, azure.Where(d => d.ServiceType == typeof(TimeProvider)));
        Assert.HasCount(1, local.Where(d => d.ServiceType == typeof(TimeProvider)));
        Assert.HasCount(1, local.Where(d => d.ServiceType == typeof(IEventQueue)), "local mode adds only its own queue");
    }
}
