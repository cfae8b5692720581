using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>Validates <see cref="KlaviyoOptions"/> at start-up; messages name the setting as an operator writes it.</summary>
internal sealed class KlaviyoOptionsValidator : IValidateOptions<KlaviyoOptions>
{
    private const string Prefix = KlaviyoOptions.SectionName + "__";

    /// <summary>See <see cref="KeyVaultReference.IsUnresolved"/>.</summary>
    public static bool IsUnresolvedKeyVaultReference(string? value) => KeyVaultReference.IsUnresolved(value);

    public ValidateOptionsResult Validate(string? name, KlaviyoOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.PrivateApiKey))
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.PrivateApiKey)} is required");
        }
        else if (IsUnresolvedKeyVaultReference(options.PrivateApiKey))
        {
            // Accepted: on a first provision the app starts seconds before its references resolve. Refusing here would
            // stop the worker, and with it /api/health and the ingest. Instead health answers 503 naming the setting,
            // the ingest keeps queueing, and the relay puts deliveries off without calling Klaviyo (RelayProcessor).
        }
        else if (options.PrivateApiKey.Any(char.IsWhiteSpace))
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.PrivateApiKey)} must not contain white space");
        }

        if (!string.IsNullOrEmpty(options.ListId) && !ListIds.IsValid(options.ListId))
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.ListId)}: '{options.ListId}' {ListIds.Rule}");
        }

        if (!string.Equals(options.OnSubscribeFalse, KlaviyoOptions.OnSubscribeFalseUnsubscribe, StringComparison.OrdinalIgnoreCase)
            && !string.Equals(options.OnSubscribeFalse, KlaviyoOptions.OnSubscribeFalseAddToList, StringComparison.OrdinalIgnoreCase))
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.OnSubscribeFalse)}: '{options.OnSubscribeFalse}' is not one of {KlaviyoOptions.OnSubscribeFalseUnsubscribe}, {KlaviyoOptions.OnSubscribeFalseAddToList}");
        }
        if (!KlaviyoOptions.GroupModes.Any(options.GroupModeIs))
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.GroupMode)}: '{options.GroupMode}' is not one of {string.Join(", ", KlaviyoOptions.GroupModes)}");
        }
        if (!options.OrderCompletedIsKnown)
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.OrderCompleted)}: '{options.OrderCompleted}' is not one of {KlaviyoOptions.OrderCompletedAsEvent}, {KlaviyoOptions.OrderCompletedAsPlacedOrder}");
        }
        CheckMetricName(failures, nameof(KlaviyoOptions.PlacedOrderMetric), options.PlacedOrderMetric);
        CheckMetricName(failures, nameof(KlaviyoOptions.OrderedProductMetric), options.OrderedProductMetric);
        if (string.Equals(options.PlacedOrderMetric?.Trim(), options.OrderedProductMetric?.Trim(), StringComparison.OrdinalIgnoreCase))
        {
            // Klaviyo matches metric names case-insensitively: equal names would merge the order and its items into one metric.
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.OrderedProductMetric)}: '{options.OrderedProductMetric}' must differ from {Prefix}{nameof(KlaviyoOptions.PlacedOrderMetric)}");
        }
        if (options.CustomSource.Length > 255)
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.CustomSource)}: must be at most 255 characters");
        }
        KlaviyoOptions.ParseConsent(options.Consent, out var unknown, out _);
        foreach (var value in unknown)
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.Consent)}: '{value}' is not one of email, sms");
        }

        if (string.IsNullOrWhiteSpace(options.Revision) || !IsRevision(options.Revision))
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.Revision)}: '{options.Revision}' is not a revision date (YYYY-MM-DD, optional .suffix)");
        }

        if (!Uri.TryCreate(options.BaseUrl, UriKind.Absolute, out var baseUrl) || (baseUrl.Scheme != Uri.UriSchemeHttps && baseUrl.Scheme != Uri.UriSchemeHttp))
        {
            failures.Add($"{Prefix}{nameof(KlaviyoOptions.BaseUrl)}: '{options.BaseUrl}' is not an absolute http(s) URL");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    // Klaviyo's rule for a metric name (spec 5, track): not empty, under 128 characters.
    private static void CheckMetricName(List<string> failures, string setting, string? value)
    {
        var name = value?.Trim() ?? "";
        if (name.Length == 0)
        {
            failures.Add($"{Prefix}{setting} must not be empty");
        }
        else if (name.Length > Transform.EventBody.MaxMetricNameLength)
        {
            failures.Add($"{Prefix}{setting}: must be shorter than 128 characters (it has {name.Length})");
        }
    }

    private static bool IsRevision(string value)
    {
        var date = value.Split('.', 2)[0];
        return date.Length == 10 && DateOnly.TryParseExact(date, "yyyy-MM-dd", out _);
    }
}
