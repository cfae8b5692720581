using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions;

/// <summary>Composition root: every feature registers itself through one call here.</summary>
public static class RelayServiceCollectionExtensions
{
    public static IServiceCollection AddKlaviyoRelay(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddKlaviyoOptions();
        services.AddKlaviyoTransform();
        services.AddKlaviyoClient();
        services.AddRelay(configuration);
        services.AddIngest(configuration);
        services.AddRelayTelemetry(configuration);
        return services;
    }
}
