using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Klaviyo;

internal static class KlaviyoServiceCollectionExtensions
{
    /// <summary>Binds <see cref="KlaviyoOptions"/> from section <c>Klaviyo</c> and validates it at start-up.</summary>
    public static IServiceCollection AddKlaviyoOptions(this IServiceCollection services)
    {
        services.AddValidatedOptions<KlaviyoOptions, KlaviyoOptionsValidator>(KlaviyoOptions.SectionName);
        services.AddHostedService<LegacyConsentWarning>();
        return services;
    }

    /// <summary>
    /// Registers the typed <see cref="KlaviyoClient"/>: headers of spec section 2, no redirects (a 3xx is a rejection),
    /// then resilience (call timeout → in-call retries → per-try timeout), then the bounded body read, then the
    /// per-endpoint rate limiter, so that every try takes a permit and its whole exchange sits in the per-try timeout.
    /// </summary>
    public static IServiceCollection AddKlaviyoClient(this IServiceCollection services)
    {
        services.AddRelayOptions();
        services.AddRelayMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<KlaviyoRateLimits>();
        services.TryAddTransient<KlaviyoRateLimitHandler>();
        var client = services.AddHttpClient<KlaviyoClient>((sp, http) => KlaviyoClient.Configure(http, sp.GetRequiredService<IOptions<KlaviyoOptions>>().Value))
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            })
            // The factory's default loggers put raw header values (the key) into the log state at Trace level even
            // when the message text is redacted; the relay logs its own outcomes instead.
            .RemoveAllLoggers();
        client.AddResilienceHandler("klaviyo", (pipeline, context) => KlaviyoResilience.Configure(
                pipeline,
                context.ServiceProvider.GetRequiredService<IOptions<RelayOptions>>().Value,
                context.ServiceProvider.GetRequiredService<TimeProvider>(),
                context.ServiceProvider.GetRequiredService<RelayMetrics>()));
        client.AddHttpMessageHandler(() => new KlaviyoAnswerHandler()); // inside the per-try timeout: it reads the body
        client.AddHttpMessageHandler<KlaviyoRateLimitHandler>();
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
