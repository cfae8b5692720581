using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Klaviyo;

public static class KlaviyoServiceCollectionExtensions
{
    /// <summary>Binds <see cref="KlaviyoOptions"/> from section <c>Klaviyo</c> and validates it at start-up.</summary>
    public static IServiceCollection AddKlaviyoOptions(this IServiceCollection services)
    {
        services.AddOptions<KlaviyoOptions>().BindConfiguration(KlaviyoOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<KlaviyoOptions>, KlaviyoOptionsValidator>();
        services.AddHostedService<LegacyConsentWarning>();
        return services;
    }

    /// <summary>Registers the typed Klaviyo HTTP client with its resilience pipeline. (Issue 3.)</summary>
    public static IServiceCollection AddKlaviyoClient(this IServiceCollection services)
    {
        return services;
    }

    /// <summary>Logs the legacy consent values once at start-up (spec section 3).</summary>
    private sealed class LegacyConsentWarning(IOptions<KlaviyoOptions> options, ILogger<LegacyConsentWarning> logger) : Microsoft.Extensions.Hosting.IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            KlaviyoOptions.ParseConsent(options.Value.Consent, out _, out var legacy);
            if (legacy.Count > 0)
            {
                logger.LogWarning("Klaviyo__Consent: legacy value(s) {Values} are accepted and ignored", string.Join(", ", legacy));
            }
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
