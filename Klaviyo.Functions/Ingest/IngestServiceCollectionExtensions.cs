using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Ingest;

internal static class IngestServiceCollectionExtensions
{
    /// <summary>Registers the ingest handler, its options (section <c>Ingest</c>, validated at start-up) and the event queue.</summary>
    public static IServiceCollection AddIngest(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddIngestHandler();
        // Azure: the host owns the listener and its drain; the worker only turns new requests away while stopping.
        services.AddSingleton<Microsoft.Extensions.Hosting.IHostedService>(sp => ActivatorUtilities.CreateInstance<IngestStopping>(sp, TimeSpan.Zero));
        services.AddEventQueue(configuration);
        return services;
    }

    /// <summary>The handler and its options without a queue: local mode brings its own <c>IEventQueue</c>.</summary>
    internal static IServiceCollection AddIngestHandler(this IServiceCollection services)
    {
        services.AddValidatedOptions<IngestOptions, IngestOptionsValidator>(IngestOptions.SectionName);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SignatureVerifier>();
        services.TryAddSingleton<EventValidator>();
        services.TryAddSingleton<IngestAdmission>();
        services.AddMetrics();
        services.TryAddSingleton<IngestMetrics>();
        services.TryAddSingleton<IngestHandler>();
        return services;
    }
}
