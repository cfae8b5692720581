using Klaviyo.Functions.Settings;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Transform;

internal static class TransformServiceCollectionExtensions
{
    public static IServiceCollection AddKlaviyoTransform(this IServiceCollection services)
    {
        services.AddRelayOptions(); // Relay__MaxItemsPerOrder
        services.AddSingleton<KlaviyoTransformer>();
        return services;
    }
}
