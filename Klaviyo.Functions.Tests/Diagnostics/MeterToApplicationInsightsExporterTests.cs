using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Klaviyo.Functions.Diagnostics;
using Microsoft.ApplicationInsights;
using Microsoft.ApplicationInsights.Channel;
using Microsoft.ApplicationInsights.DataContracts;
using Microsoft.ApplicationInsights.Extensibility;

namespace Klaviyo.Functions.Tests.Diagnostics;

[TestClass]
public sealed class MeterToApplicationInsightsExporterTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class RecordingChannel : ITelemetryChannel
    {
        public ConcurrentQueue<ITelemetry> Items { get; } = new();
        public bool? DeveloperMode { get; set; }
        public string EndpointAddress { get; set; } = "http://127.0.0.1/unused";
        public void Send(ITelemetry item) => Items.Enqueue(item);
        public void Flush() { }
        public void Dispose() { }
    }

    [TestMethod]
    public async Task Exporter_WithCountersAndHistogram_SendsMetricsWithTagsAsDimensions()
    {
        var channel = new RecordingChannel();
        using var configuration = new TelemetryConfiguration { TelemetryChannel = channel, ConnectionString = "InstrumentationKey=00000000-0000-0000-0000-000000000001" };
        var client = new TelemetryClient(configuration);
        // A meter name of this test's own: other tests may create the relay's real meter at the same time.
        var meterName = "Test.Relay." + Guid.NewGuid().ToString("N");
        using var exporter = new MeterToApplicationInsightsExporter(client, meterName);
        await exporter.StartAsync(TestContext.CancellationToken);

        using var meter = new Meter(meterName);
        using var otherMeter = new Meter(meterName + ".other");
        var deadLettered = meter.CreateCounter<long>("relay.dead_lettered");
        var latency = meter.CreateHistogram<double>("klaviyo.latency", unit: "ms");
        deadLettered.Add(1, new KeyValuePair<string, object?>("reason", "KlaviyoRejected"));
        deadLettered.Add(1, new KeyValuePair<string, object?>("reason", "KlaviyoRejected"));
        deadLettered.Add(1, new KeyValuePair<string, object?>("reason", "RetriesExhausted"));
        latency.Record(120, new KeyValuePair<string, object?>("endpoint", "events"));
        latency.Record(80, new KeyValuePair<string, object?>("endpoint", "events"));
        otherMeter.CreateCounter<long>("not.exported").Add(5);

        await exporter.StopAsync(TestContext.CancellationToken);

        var metrics = channel.Items.OfType<MetricTelemetry>().ToList();
        var rejected = metrics.Single(m => m.Name == "relay.dead_lettered" && m.Properties["reason"] == "KlaviyoRejected");
        Assert.AreEqual(2, rejected.Sum);
        var exhausted = metrics.Single(m => m.Name == "relay.dead_lettered" && m.Properties["reason"] == "RetriesExhausted");
        Assert.AreEqual(1, exhausted.Sum);
        var klaviyoLatency = metrics.Single(m => m.Name == "klaviyo.latency");
        Assert.AreEqual(2, klaviyoLatency.Count);
        Assert.AreEqual(120, klaviyoLatency.Max);
        Assert.AreEqual(80, klaviyoLatency.Min);
        Assert.AreEqual("events", klaviyoLatency.Properties["endpoint"]);
        Assert.DoesNotContain(m => m.Name == "not.exported", metrics);
    }
}
