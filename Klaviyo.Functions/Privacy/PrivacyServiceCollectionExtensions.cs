using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Klaviyo.Functions.Privacy;

internal static class PrivacyServiceCollectionExtensions
{
    /// <summary>The deletion route's handler, for either host; the host brings the <c>IEventQueue</c>.</summary>
    public static IServiceCollection AddPrivacyRoute(this IServiceCollection services)
    {
        services.TryAddTransient<DeletionRequestHandler>();
        return services;
    }
}
