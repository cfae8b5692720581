using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Klaviyo.Functions.Diagnostics;

internal static class MetricsServiceCollectionExtensions
{
    /// <summary>The meter and <see cref="RelayMetrics"/>; safe to call from every feature that records.</summary>
    public static IServiceCollection AddRelayMetrics(this IServiceCollection services)
    {
        services.AddMetrics();
        services.TryAddSingleton<RelayMetrics>();
        return services;
    }
}
