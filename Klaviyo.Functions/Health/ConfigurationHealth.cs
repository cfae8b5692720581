using System.Reflection;
using System.Text.RegularExpressions;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Health;

/// <summary>One configuration check: its name, whether it passed, and the settings at fault (names only, never values).</summary>
internal sealed record HealthCheckResult(string Name, bool Passed, IReadOnlyList<string> Settings);

/// <summary>Checks the configuration the relay depends on, without calling out: every options class with a
/// <c>SectionName</c> binds and validates, Service Bus is configured, and no Key Vault reference was left unresolved.</summary>
internal sealed partial class ConfigurationHealth(IServiceProvider services, IConfiguration configuration)
{
    private static readonly Type[] OptionsTypes = [.. typeof(ConfigurationHealth).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } && t.Name.EndsWith("Options", StringComparison.Ordinal)
                    && t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true })
        .OrderBy(t => t.Name, StringComparer.Ordinal)];

    /// <param name="includeServiceBus">False in local mode, which has an in-process queue instead of Service Bus.</param>
    public IReadOnlyList<HealthCheckResult> Check(bool includeServiceBus = true)
    {
        var results = new List<HealthCheckResult>();
        foreach (var type in OptionsTypes)
        {
            results.Add(CheckOptions(type));
        }
        if (includeServiceBus)
        {
            results.Add(CheckServiceBus());
        }
        results.Add(CheckKeyVaultReferences());
        return results;
    }

    private HealthCheckResult CheckOptions(Type optionsType)
    {
        var section = (string)optionsType.GetField("SectionName")!.GetRawConstantValue()!;
        var accessor = services.GetService(typeof(IOptions<>).MakeGenericType(optionsType));
        try
        {
            _ = accessor?.GetType().GetProperty(nameof(IOptions<object>.Value))!.GetValue(accessor);
            return new HealthCheckResult(section, true, []);
        }
        catch (TargetInvocationException e) when (e.InnerException is OptionsValidationException invalid)
        {
            // Validators name the setting first ("Klaviyo__ListId: '…' must …"); keep the name, drop the rest.
            var settings = invalid.Failures
                .Select(f => SettingName().Match(f))
                .Select(m => m.Success ? m.Value : section + "__*")
                .Distinct(StringComparer.Ordinal)
                .ToList();
            return new HealthCheckResult(section, false, settings);
        }
        catch (TargetInvocationException)
        {
            // Binding failed (e.g. "abc" for an integer); the exception text would carry the value, so it is not reported.
            return new HealthCheckResult(section, false, [section + "__*"]);
        }
    }

    private HealthCheckResult CheckServiceBus()
    {
        // The sender's own reading and rule, so health passes exactly when the sender can be built.
        var result = new EventQueueOptionsValidator().Validate(null, EventQueueOptions.From(configuration));
        var settings = result.Failed
            ? result.Failures!.Select(f => f.Split(' ', 2)[0].TrimEnd(':')).Distinct(StringComparer.Ordinal).ToList()
            : [];
        return new HealthCheckResult(MessageProperties.ConnectionName, !result.Failed, settings);
    }

    private HealthCheckResult CheckKeyVaultReferences()
    {
        // App Service leaves the literal reference in place when it cannot resolve it (missing role, deleted secret).
        var unresolved = configuration.AsEnumerable()
            .Where(pair => KeyVaultReference.IsUnresolved(pair.Value))
            .Select(pair => pair.Key.Replace(":", "__", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();
        return new HealthCheckResult("KeyVaultReferences", unresolved.Count == 0, unresolved);
    }

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9]*__[A-Za-z0-9]+")]
    private static partial Regex SettingName();
}
