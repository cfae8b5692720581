using System.Diagnostics.Metrics;
using Microsoft.ApplicationInsights;
using Microsoft.ApplicationInsights.Metrics;
using Microsoft.Extensions.Hosting;

namespace Klaviyo.Functions.Diagnostics;

/// <summary>Forwards every measurement of one <see cref="Meter"/> (by name) to Application Insights custom metrics.
/// The Application Insights 2.x SDK does not collect System.Diagnostics.Metrics by itself; this bridge does, with the
/// measurement's tags as dimensions (for example the dead-letter <c>reason</c>). The SDK pre-aggregates per minute:
/// a counter shows as the metric's Sum, a histogram (Klaviyo latency) as count/min/max/average.</summary>
public sealed class MeterToApplicationInsightsExporter(TelemetryClient telemetry, string meterName) : IHostedService, IDisposable
{
    // Application Insights allows at most 10 dimensions per metric.
    private const int MaxDimensions = 10;

    private readonly MeterListener listener = new();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == meterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Track(instrument, value, tags));
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Track(instrument, value, tags));
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Track(instrument, value, tags));
        listener.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        listener.Dispose();
        telemetry.Flush();
        return Task.CompletedTask;
    }

    public void Dispose() => listener.Dispose();

    private void Track(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var pairs = tags.ToArray();
        Array.Sort(pairs, (a, b) => string.CompareOrdinal(a.Key, b.Key));
        var count = Math.Min(pairs.Length, MaxDimensions);
        var names = new string[count];
        var values = new string[count];
        for (var i = 0; i < count; i++)
        {
            names[i] = pairs[i].Key;
            values[i] = pairs[i].Value?.ToString() ?? "";
        }
        var metric = telemetry.GetMetric(new MetricIdentifier(MetricIdentifier.DefaultMetricNamespace, instrument.Name, names));
        if (metric.TryGetDataSeries(out var series, true, values))
        {
            series.TrackValue(value);
        }
    }
}
