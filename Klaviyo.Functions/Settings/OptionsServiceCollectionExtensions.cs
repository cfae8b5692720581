using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Settings;

internal static class OptionsServiceCollectionExtensions
{
    /// <summary>The one way a settings section is bound: <c>BindConfiguration(section)</c>, validated at start-up by one
    /// <typeparamref name="TValidator"/> (registered once however often features ask for it).</summary>
    public static OptionsBuilder<TOptions> AddValidatedOptions<TOptions, TValidator>(this IServiceCollection services, string sectionName)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, TValidator>());
        return services.AddOptions<TOptions>().BindConfiguration(sectionName).ValidateOnStart();
    }

    /// <summary>Binds <see cref="RelayOptions"/>; safe to call from every feature that needs them.</summary>
    public static IServiceCollection AddRelayOptions(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(IValidateOptions<RelayOptions>)))
        {
            return services;
        }
        services.AddValidatedOptions<RelayOptions, RelayOptionsValidator>(RelayOptions.SectionName);
        return services;
    }

    /// <summary>Binds <see cref="PrivacyOptions"/>; safe to call from every feature that needs them.</summary>
    public static IServiceCollection AddPrivacyOptions(this IServiceCollection services)
    {
        if (services.Any(d => d.ServiceType == typeof(IValidateOptions<PrivacyOptions>)))
        {
            return services;
        }
        services.AddValidatedOptions<PrivacyOptions, PrivacyOptionsValidator>(PrivacyOptions.SectionName);
        return services;
    }
}
