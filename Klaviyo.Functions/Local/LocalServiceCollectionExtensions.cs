using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Microsoft.Extensions.Logging;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

internal static class LocalServiceCollectionExtensions
{
    /// <summary>What local mode adds to the core registration (<see cref="RelayServiceCollectionExtensions.AddRelayCore"/>):
    /// its options, the SQLite queue (as the ingest's queue and the replay's dead-letter store), its settlement and
    /// worker, and Klaviyo:DryRun.</summary>
    public static IServiceCollection AddLocalQueue(this IServiceCollection services)
    {
        services.AddValidatedOptions<LocalOptions, LocalOptionsValidator>(LocalOptions.SectionName);
        services.AddSingleton(sp => SqliteEventQueue.Open(sp.GetRequiredService<IOptions<LocalOptions>>().Value, sp.GetRequiredService<TimeProvider>(), Ordering(sp)));
        services.AddSingleton<IEventQueue>(sp => sp.GetRequiredService<SqliteEventQueue>());
        services.AddSingleton<IDeadLetterStore>(sp => sp.GetRequiredService<SqliteEventQueue>());
        services.AddSingleton(sp => new DeadLetterFile(sp.GetRequiredService<IOptions<LocalOptions>>().Value.DeadLetterPath, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<LocalSettlement>();
        services.AddSingleton<LocalCounters>();
        services.AddSingleton<LocalActivity>();
        services.AddSingleton<LocalStatus>();
        services.AddHostedService<LocalRelayWorker>();
        services.AddOptions<HostOptions>().Configure<IOptions<LocalOptions>>((host, local) => host.ShutdownTimeout = local.Value.ShutdownGrace + TimeSpan.FromSeconds(15));
        services.AddHttpClient<KlaviyoClient>().AddHttpMessageHandler(sp => new DryRunKlaviyoHandler(sp.GetRequiredService<IOptions<KlaviyoOptions>>(), Console.Out));
        return services;
    }

    /// <summary>Per-profile ordering in the queue itself (spec 10), with the valve's warning and metric.</summary>
    private static LocalOrdering Ordering(IServiceProvider services)
    {
        var relay = services.GetRequiredService<IOptions<RelayOptions>>().Value;
        var metrics = services.GetRequiredService<Diagnostics.RelayMetrics>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger<SqliteEventQueue>();
        return new LocalOrdering(relay.OrderingEnabled, relay.OrderingMaxHeldPerKey, RelayOptions.OrderingValveOpenFor, (key, held) =>
        {
            metrics.OrderingValveOpened();
            OrderingLog.ValveOpened(logger, OrderingKeys.ForLog(key), held, relay.OrderingMaxHeldPerKey, RelayOptions.OrderingValveOpenFor);
        });
    }
}
