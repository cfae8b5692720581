using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

internal sealed class LocalOptionsValidator : IValidateOptions<LocalOptions>
{
    /// <summary>Shortest key accepted for <c>Local__ApiKey</c> and <c>Local__AdminKey</c>.</summary>
    public const int MinKeyLength = 16;

    public ValidateOptionsResult Validate(string? name, LocalOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.DeadLetterPath))
        {
            failures.Add("Local__DeadLetterPath is required");
        }
        if (string.IsNullOrWhiteSpace(options.DatabasePath))
        {
            failures.Add("Local__DatabasePath is required");
        }
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.Concurrency), options.Concurrency, 1, 64);
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.BatchSize), options.BatchSize, 1, 1000);
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.MinBatchSize), options.MinBatchSize, 1, 1000);
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.BatchWait), options.BatchWait, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.ShutdownGrace), options.ShutdownGrace, TimeSpan.Zero, TimeSpan.FromMinutes(5));
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.DuplicateWindow), options.DuplicateWindow, TimeSpan.Zero, TimeSpan.FromDays(7));
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.MaxBacklog), options.MaxBacklog, 1L, 100_000_000L);
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.LeaseDuration), options.LeaseDuration, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        foreach (var (setting, key) in new[] { (nameof(LocalOptions.ApiKey), options.ApiKey), (nameof(LocalOptions.AdminKey), options.AdminKey) })
        {
            if (!string.IsNullOrEmpty(key) && key.Trim().Length < MinKeyLength)
            {
                failures.Add($"Local__{setting} must be at least {MinKeyLength} characters when set");
            }
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
