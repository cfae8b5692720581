using Azure.Identity;
using Azure.Monitor.OpenTelemetry.Exporter;
using Klaviyo.Functions.Telemetry;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Klaviyo.Functions.Tests.Diagnostics;

/// <summary>
/// The worker's OpenTelemetry set-up as the composition root registers it (<see cref="TelemetryServiceCollectionExtensions.AddRelayTelemetry"/>),
/// with an in-memory exporter added to the same meter provider: what Azure Monitor would receive.
/// </summary>
[TestClass]
public sealed class RelayTelemetryTests
{
    public TestContext TestContext { get; set; } = null!;

    private static Dictionary<string, string?> Settings(string baseUrl) => new()
    {
        ["Klaviyo:PrivateApiKey"] = RelayTestHost.ApiKey,
        ["Klaviyo:BaseUrl"] = baseUrl,
        ["Relay:InCallRetryDelay"] = "00:00:00.010",
        ["ServiceBus:fullyQualifiedNamespace"] = "relay-test.servicebus.windows.net",
        ["EventsQueueName"] = "klaviyo-events",
    };

    private static ServiceProvider Build(Dictionary<string, string?> settings, List<MetricSnapshot>? exported = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddKlaviyoRelay(configuration);
        services.AddSingleton<IEventQueue>(new RecordingEventQueue());
        if (exported is not null)
        {
            services.ConfigureOpenTelemetryMeterProvider(metrics => metrics.AddInMemoryExporter(exported));
        }
        return services.BuildServiceProvider();
    }

    [TestMethod]
    public async Task AddRelayTelemetry_ExportsOutcomeCountersAndKlaviyoDurationsWithTheirDimensions()
    {
        using var klaviyo = FakeKlaviyo.Start();
        klaviyo.AnswerInTurn("/api/events", (202, null), (400, FakeKlaviyo.ErrorAnswer(400, "invalid", "metric name is too long", "/data/attributes/metric")));
        var exported = new List<MetricSnapshot>();
        await using var services = Build(Settings(klaviyo.BaseUrl), exported);
        var meterProvider = services.GetRequiredService<MeterProvider>(); // what the host starts
        var processor = services.GetRequiredService<RelayProcessor>();

        var delivered = await processor.ExecuteAsync(Plans.Track("m-1"), "m-1", attempt: 1, TestContext.CancellationToken);
        var rejected = await processor.ExecuteAsync(Plans.Track("m-2"), "m-2", attempt: 1, TestContext.CancellationToken);
        Assert.IsInstanceOfType<RelayOutcome.Delivered>(delivered);
        Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(rejected);
        Assert.IsTrue(meterProvider.ForceFlush(10_000));

        var points = exported.SelectMany(m => m.MetricPoints.Select(p => (m.Name, Point: p))).ToList();
        Assert.AreEqual(1, points.Where(p => p.Name == "klaviyo.relay.delivered").Sum(p => p.Point.GetSumLong()));
        var deadLettered = points.Single(p => p.Name == "klaviyo.relay.dead_lettered");
        Assert.AreEqual(1, deadLettered.Point.GetSumLong());
        Assert.AreEqual(nameof(DeadLetterReason.KlaviyoRejected), Tag(deadLettered.Point, "reason"));

        var durations = points.Where(p => p.Name == "klaviyo.relay.klaviyo.duration").ToList();
        var statuses = durations.Select(p => Convert.ToInt32(Tag(p.Point, "http.response.status_code"), System.Globalization.CultureInfo.InvariantCulture)).Order().ToArray();
        Assert.AreSequenceEqual(new[] { 202, 400 }, statuses);
        foreach (var point in durations.Select(p => p.Point))
        {
            Assert.AreEqual("CreateEvent", Tag(point, "endpoint"));
            Assert.AreEqual(1, point.GetHistogramCount());
            Assert.IsGreaterThan(0, point.GetHistogramSum());
        }
        Assert.AreEqual("s", exported.Last(m => m.Name == "klaviyo.relay.klaviyo.duration").Unit);
    }

    [TestMethod]
    public async Task AddRelayTelemetry_InAzureWithConnectionString_ExportsWithTheUserAssignedManagedIdentity()
    {
        var settings = Settings("https://a.klaviyo.com");
        settings[TelemetryServiceCollectionExtensions.ConnectionStringSetting] = "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://example.in.applicationinsights.azure.com/";
        settings[AzureCredentials.SiteNameVariable] = "func-relay-test";
        settings[AzureCredentials.ClientIdSetting] = "11111111-2222-3333-4444-555555555555";
        await using var services = Build(settings);

        var options = services.GetRequiredService<IOptionsMonitor<AzureMonitorExporterOptions>>().Get(Options.DefaultName);

        Assert.IsInstanceOfType<ManagedIdentityCredential>(options.Credential);
        Assert.AreEqual(settings[TelemetryServiceCollectionExtensions.ConnectionStringSetting], options.ConnectionString);
        Assert.AreEqual(TelemetryServiceCollectionExtensions.TracesPerSecond, options.TracesPerSecond);
    }

    [TestMethod]
    public async Task AddRelayTelemetry_BadExporter_FailsNamingTheSetting()
    {
        var settings = Settings("https://a.klaviyo.com");
        settings["Telemetry:Exporter"] = "zipkin";
        await using var services = Build(settings);

        var failure = Assert.ThrowsExactly<OptionsValidationException>(() => services.GetRequiredService<IOptions<TelemetryOptions>>().Value);
        Assert.AreEqual("Telemetry__Exporter: 'zipkin' is not one of none, console, otlp", failure.Failures.Single());
    }

    [TestMethod]
    public void AzureCredentials_InAzure_ManagedIdentityOnly_Locally_TheDeveloperChain()
    {
        var azure = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [AzureCredentials.SiteNameVariable] = "func-x" }).Build();
        var local = new ConfigurationBuilder().Build();

        Assert.IsInstanceOfType<ManagedIdentityCredential>(AzureCredentials.Create(azure, "11111111-2222-3333-4444-555555555555"));
        Assert.IsInstanceOfType<ManagedIdentityCredential>(AzureCredentials.Create(azure, null));
        Assert.IsInstanceOfType<DefaultAzureCredential>(AzureCredentials.Create(local, null));
    }

    private static object? Tag(MetricPoint point, string key)
    {
        foreach (var tag in point.Tags)
        {
            if (tag.Key == key)
            {
                return tag.Value;
            }
        }
        return null;
    }
}
