using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

internal sealed class LocalOptionsValidator : IValidateOptions<LocalOptions>
{
    /// <summary>Shortest key accepted for <c>Local__ApiKey</c> and <c>Local__AdminKey</c>.</summary>
    public const int MinKeyLength = 16;

    /// <summary>Shortest <c>Local__LeaseDuration</c>: the relay's bound on one delivery or batch, the one every
    /// <c>Relay__</c> timeout is checked to fit (<see cref="RelayOptionsValidator"/>).</summary>
    public static readonly TimeSpan MinLeaseDuration = RelayOptions.MessageLockDuration;

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
        SettingRules.Range(failures, LocalOptions.SectionName, nameof(LocalOptions.MinFreeDiskBytes), options.MinFreeDiskBytes, 0L, 1L << 40);
        if (options.LeaseDuration < MinLeaseDuration)
        {
            // RelayOptionsValidator holds every delivery (and a batch runs under one deadline) within the message lock, so
            // a lease at least that long is never lapsed while its holder still works; a shorter one hands a slow delivery
            // to a second consumer.
            failures.Add(
                $"Local__LeaseDuration: {options.LeaseDuration} is shorter than the longest a delivery or a batch may take; it must be at least {MinLeaseDuration} " +
                $"(the relay bounds one delivery, {RelayOptions.MaxCallsPerPlan} Klaviyo calls plus {RelayOptions.SettlementAllowance} to settle, and a batch by the " +
                $"{RelayOptions.MessageLockDuration} message lock), or a slow delivery is handed out twice");
        }
        else if (options.LeaseDuration > TimeSpan.FromHours(1))
        {
            failures.Add($"Local__LeaseDuration: {options.LeaseDuration} is not between {MinLeaseDuration} and {TimeSpan.FromHours(1)}");
        }
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
