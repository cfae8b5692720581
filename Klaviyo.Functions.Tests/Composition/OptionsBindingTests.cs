using System.Reflection;
using Klaviyo.Functions.Telemetry;
using Klaviyo.Functions.Klaviyo;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Tests.Composition;

/// <summary>Every settings section of the Azure composition root is bound the same way: from its <c>SectionName</c>,
/// by one validator, checked at start-up (a bad value stops the host naming the setting).</summary>
[TestClass]
public sealed class OptionsBindingTests
{
    public TestContext TestContext { get; set; } = null!;

    private static Dictionary<string, string?> AzureSettings() => new()
    {
        ["Klaviyo:PrivateApiKey"] = "pk_binding_test",
        ["ServiceBus"] = "Endpoint=sb://relay-test.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0",
        ["EventsQueueName"] = "klaviyo-events",
    };

    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddKlaviyoRelay(builder.Configuration);
        return builder.Build();
    }

    public static IEnumerable<object[]> AzureSections() =>
        typeof(KlaviyoOptions).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && t.Name.EndsWith("Options", StringComparison.Ordinal)
                        && t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true }
                        && t.Namespace != "Klaviyo.Functions.Local")
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => new object[] { t.Name });

    [TestMethod]
    public void AzureSections_AreTheFourTheAppReads()
    {
        Assert.AreSequenceEqual(
            new[] { "IngestOptions", "KlaviyoOptions", "RelayOptions", "TelemetryOptions" },
            AzureSections().Select(row => (string)row[0]).ToArray());
    }

    [TestMethod]
    [DynamicData(nameof(AzureSections))]
    public void AzureRoot_EachSection_HasExactlyOneValidatorAndBindsFromItsSectionName(string typeName)
    {
        var type = typeof(KlaviyoOptions).Assembly.GetTypes().Single(t => t.Name == typeName);
        using var host = Build(AzureSettings());

        var validators = (IEnumerable<object>)host.Services.GetRequiredService(typeof(IEnumerable<>).MakeGenericType(typeof(IValidateOptions<>).MakeGenericType(type)));
        Assert.HasCount(1, validators.ToList(), $"{typeName}: one validator, however often features register it");

        var section = (string)type.GetField("SectionName")!.GetRawConstantValue()!;
        var configurations = (IEnumerable<object>)host.Services.GetRequiredService(typeof(IEnumerable<>).MakeGenericType(typeof(IConfigureOptions<>).MakeGenericType(type)));
        Assert.IsNotEmpty(configurations.ToList(), $"{typeName} is bound from section {section}");
    }

    [TestMethod]
    [DataRow("Klaviyo:Consent", "fax", "Klaviyo__Consent")]
    [DataRow("Klaviyo:ListId", "LIST-1", "Klaviyo__ListId")]
    [DataRow("Relay:MaxAttempts", "0", "Relay__MaxAttempts")]
    [DataRow("Ingest:MaxRequestBytes", "10", "Ingest__MaxRequestBytes")]
    [DataRow("Telemetry:Exporter", "carrier-pigeon", "Telemetry__Exporter")]
    [DataRow("EventsQueueName", "", "EventsQueueName")]
    public async Task AzureRoot_BadValueInAnySection_StopsStartUpNamingTheSetting(string key, string value, string setting)
    {
        var settings = AzureSettings();
        settings[key] = value;
        using var host = Build(settings);

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.CancellationToken));

        Assert.Contains(f => f.StartsWith(setting, StringComparison.Ordinal), ex.Failures.ToList());
    }
}
