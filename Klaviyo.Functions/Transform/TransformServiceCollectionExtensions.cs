using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Transform;

internal static class TransformServiceCollectionExtensions
{
    public static IServiceCollection AddKlaviyoTransform(this IServiceCollection services)
    {
        services.AddSingleton<KlaviyoTransformer>();
        return services;
    }
}
