using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Relay;

public static class RelayFeatureServiceCollectionExtensions
{
    /// <summary>Registers the relay processor, options and Service Bus pieces. (Issue 3.)</summary>
    public static IServiceCollection AddRelay(this IServiceCollection services, IConfiguration configuration)
    {
        return services;
    }
}
