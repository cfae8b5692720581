using Klaviyo.Functions.Telemetry;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Klaviyo.Functions;

/// <summary>Composition root: every feature registers itself through one call here.</summary>
internal static class RelayServiceCollectionExtensions
{
    public static IServiceCollection AddKlaviyoRelay(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddRelayCore();
        services.AddRelay(configuration);
        services.AddIngest(configuration);
        services.AddRelayTelemetry(configuration);
        return services;
    }

    /// <summary>The registrations both hosts share (Azure above, local mode in <c>LocalHost</c>): one clock, options,
    /// transform, Klaviyo client, processor, settler, replayer, ingest handler and configuration health. Each host adds only its queue,
    /// dead-letter store and settlement.</summary>
    public static IServiceCollection AddRelayCore(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddKlaviyoOptions();
        services.AddKlaviyoTransform();
        services.AddKlaviyoClient();
        services.AddRelayProcessing();
        services.AddIngestHandler();
        services.TryAddSingleton<Health.ConfigurationHealth>();
        return services;
    }
}
