using Azure.Monitor.OpenTelemetry.Exporter;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Settings;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Klaviyo.Functions.Telemetry;

internal static class TelemetryServiceCollectionExtensions
{
    public const string ConnectionStringSetting = "APPLICATIONINSIGHTS_CONNECTION_STRING";

    /// <summary>Rate-limited trace sampling for Azure Monitor: host.json sampling does not apply in OpenTelemetry mode,
    /// so the worker bounds its request and dependency traces itself. Metrics are pre-aggregated (not sampled).</summary>
    public const double TracesPerSecond = 5;

    /// <summary>Azure: OpenTelemetry for the worker (host.json <c>"telemetryMode": "OpenTelemetry"</c>): the Functions
    /// resource and de-duplication defaults, the relay's meter, outbound HTTP traces, and the Azure Monitor exporter
    /// with the app's managed identity when <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> is set; plus the
    /// configuration health report.</summary>
    public static IServiceCollection AddRelayTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var otel = AddOpenTelemetryCore(services, configuration).UseFunctionsWorkerDefaults();
        var connectionString = configuration[ConnectionStringSetting];
        if (!string.IsNullOrWhiteSpace(connectionString))
        {
            var credential = AzureCredentials.Create(configuration, configuration[AzureCredentials.ClientIdSetting]);
            otel.UseAzureMonitorExporter(options =>
            {
                options.ConnectionString = connectionString;
                // The component has local auth disabled: the worker sends with the app's identity, as the host does.
                options.Credential = credential;
                options.TracesPerSecond = TracesPerSecond;
                // Outcome logs (dead letters above all) must not be dropped with an unsampled request trace.
                options.EnableTraceBasedLogsSampler = false;
            });
        }
        return services;
    }

    /// <summary>Local mode: the relay's meter and outbound HTTP traces, exported only when <c>Telemetry__Exporter</c>
    /// asks (console or OTLP).</summary>
    public static IServiceCollection AddLocalTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        AddOpenTelemetryCore(services, configuration);
        return services;
    }

    private static IOpenTelemetryBuilder AddOpenTelemetryCore(IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<TelemetryOptions, TelemetryOptionsValidator>(TelemetryOptions.SectionName);

        var otel = services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics.AddMeter(RelayMetrics.MeterName))
            .WithTracing(tracing => tracing.AddHttpClientInstrumentation());

        // Read here (the exporters are chosen while registering); the validator reports a bad value at start-up.
        var exporter = configuration[$"{TelemetryOptions.SectionName}:{nameof(TelemetryOptions.Exporter)}"]?.Trim().ToLowerInvariant();
        switch (exporter)
        {
            case TelemetryOptions.Console:
                otel.WithMetrics(metrics => metrics.AddConsoleExporter((_, reader) => reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 10_000))
                    .WithTracing(tracing => tracing.AddConsoleExporter())
                    .WithLogging(logging => logging.AddConsoleExporter());
                break;
            case TelemetryOptions.Otlp:
                otel.UseOtlpExporter();
                break;
        }
        return otel;
    }
}
