using Azure.Identity;
using Microsoft.ApplicationInsights.Extensibility;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Diagnostics;

public static class TelemetryServiceCollectionExtensions
{
    private const string ApplicationInsightsLoggerProvider =
        "Microsoft.Extensions.Logging.ApplicationInsights.ApplicationInsightsLoggerProvider";

    /// <summary>Application Insights for the worker (logs, dependencies, the relay's metrics) with Entra auth when
    /// <c>APPLICATIONINSIGHTS_AUTHENTICATION_STRING</c> asks for it, plus the configuration health report.</summary>
    public static IServiceCollection AddRelayTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        // Worker-side adaptive sampling could drop exceptions and dead-letter traces; the worker sends few items per
        // message (outcome log, Klaviyo dependency calls, pre-aggregated metrics), so it stays unsampled. Requests are
        // sampled by the host (host.json), which excludes Request and Exception from sampling.
        services.AddApplicationInsightsTelemetryWorkerService(options => options.EnableAdaptiveSampling = false);
        services.ConfigureFunctionsApplicationInsights();

        // The component has local auth disabled, so the worker's SDK must send with the app's identity, as the host does.
        if (TelemetryAuthentication.TryParse(configuration["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"], out var clientId))
        {
            services.Configure<TelemetryConfiguration>(telemetry => telemetry.SetAzureTokenCredential(
                new ManagedIdentityCredential(clientId is null ? ManagedIdentityId.SystemAssigned : ManagedIdentityId.FromUserAssignedClientId(clientId))));
        }

        // The SDK adds a Warning-level filter for its own provider; host.json "logging.logLevel" should decide instead.
        services.Configure<LoggerFilterOptions>(options =>
        {
            var rule = options.Rules.FirstOrDefault(r => r.ProviderName == ApplicationInsightsLoggerProvider);
            if (rule is not null)
            {
                options.Rules.Remove(rule);
            }
        });

        services.AddHostedService(provider => ActivatorUtilities.CreateInstance<MeterToApplicationInsightsExporter>(provider, RelayMetrics.MeterName));
        services.AddSingleton<ConfigurationHealth>();
        return services;
    }
}
