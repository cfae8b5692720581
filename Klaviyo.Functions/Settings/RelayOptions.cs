using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Settings;

/// <summary>Settings of section <c>Relay</c> (app settings <c>Relay__Name</c>); spec sections 6 and 8.</summary>
internal sealed class RelayOptions
{
    public const string SectionName = "Relay";

    /// <summary>Attempts in all (the first delivery counts) before dead-lettering <c>RetriesExhausted</c>. Default 10, 1–100.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>How many instances share the Klaviyo account's rate limits; each instance's limiter gets 1/N of
    /// every published limit. Set it to the Flex <c>maximumInstanceCount</c>. Default 1, 1–1000.</summary>
    public int ExpectedInstanceCount { get; set; } = 1;

    /// <summary>Extra tries within one delivery for 429/408/5xx/timeouts/connection failures. Default 2, 0–2.</summary>
    public int MaxInCallRetries { get; set; } = 2;

    /// <summary>Most time spent waiting between in-call tries (including Retry-After); a longer Retry-After
    /// becomes a scheduled retry. Default 5 s, 0–5 s.</summary>
    public TimeSpan InCallRetryBudget { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>First in-call back-off (doubled per try, jittered). Default 0.5 s, 1 ms–5 s.</summary>
    public TimeSpan InCallRetryDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Timeout of one HTTP try: sending, the answer's headers and reading its body. Default 10 s, 0.1 s–2 min,
    /// and small enough that <see cref="LongestDelivery"/> fits <see cref="MessageLockDuration"/> (13 s with the other defaults).</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The queue's message lock (<c>lockDuration</c> in <c>infra/modules/servicebus.bicep</c>). A delivery must fit
    /// it without counting on renewal: the host renews only single-message triggers (up to 5 min), never batches, and a
    /// delivery that outlives its lock is delivered again by another instance.</summary>
    public static readonly TimeSpan MessageLockDuration = TimeSpan.FromMinutes(2);

    /// <summary>Klaviyo calls in the longest plan: identify's profile-import, then its list membership or subscription.</summary>
    public const int MaxCallsPerPlan = 2;

    /// <summary>Kept after the calls for settling: scheduling the retry copy, then completing or dead-lettering.</summary>
    public static readonly TimeSpan SettlementAllowance = TimeSpan.FromSeconds(30);

    /// <summary>From this many calls of one kind (events; profiles) in a batch on, the bulk endpoints are used;
    /// below it the single-call endpoints (lowest latency). Spec 8.1. Default 10, 1–10000.</summary>
    public int BulkThreshold { get; set; } = 10;

    /// <summary>How long a bulk call that is not full may wait for the next batches to fill it (spec 8): events up to
    /// 1,000 a call, a list's profiles up to one import job, so busy batches share calls instead of each sending its
    /// own part-full ones. A message waits at most this long (then its call goes, full or not); calls below
    /// <see cref="BulkThreshold"/> never wait, so a lone event on an idle relay goes at once. Default 1 s, 0 (off)–5 s.</summary>
    public TimeSpan GatherWindow { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Most items one order may carry under <c>Klaviyo__OrderCompleted=placedOrder</c> (spec 5): one Placed Order
    /// plus one Ordered Product each must fit one event bulk call of 1,000 events. Default 500, 1–999.</summary>
    public int MaxItemsPerOrder { get; set; } = DefaultMaxItemsPerOrder;

    public const int DefaultMaxItemsPerOrder = 500;

    /// <summary>Per-profile ordering (spec 10): <c>profiles</c> (default) holds a profile's later identify, group and
    /// delete events while an earlier one waits for its retry; <c>off</c> holds nothing.</summary>
    public string Ordering { get; set; } = OrderingProfiles;

    public const string OrderingProfiles = "profiles";
    public const string OrderingOff = "off";

    /// <summary>The accepted <see cref="Ordering"/> values, for start-up messages.</summary>
    public static readonly string[] OrderingModes = [OrderingProfiles, OrderingOff];

    /// <summary>True unless <see cref="Ordering"/> is <c>off</c>.</summary>
    public bool OrderingEnabled => !string.Equals(Ordering?.Trim(), OrderingOff, StringComparison.OrdinalIgnoreCase);

    /// <summary>The valve (spec 10): more messages than this held for one key turn ordering off for that key for
    /// <see cref="OrderingValveOpenFor"/>, so one broken profile cannot hold a queue. Default 200, 1–100000.</summary>
    public int OrderingMaxHeldPerKey { get; set; } = 200;

    /// <summary>How long an opened valve keeps ordering off for its key (spec 10).</summary>
    public static readonly TimeSpan OrderingValveOpenFor = TimeSpan.FromMinutes(20);

    /// <summary>Upper bound of one whole Klaviyo call: every try, every wait, plus a second of slack.</summary>
    public TimeSpan CallTimeout => (AttemptTimeout * (MaxInCallRetries + 1)) + InCallRetryBudget + TimeSpan.FromSeconds(1);

    /// <summary>Upper bound of one message's delivery: every call of the longest plan at its <see cref="CallTimeout"/>, then settling.</summary>
    public TimeSpan LongestDelivery => (CallTimeout * MaxCallsPerPlan) + SettlementAllowance;

    /// <summary>The longest <see cref="AttemptTimeout"/> whose <see cref="LongestDelivery"/> fits the lock, given the other settings.</summary>
    public TimeSpan MaxFittingAttemptTimeout =>
        TimeSpan.FromMilliseconds(Math.Floor(
            (((MessageLockDuration - SettlementAllowance) / MaxCallsPerPlan) - InCallRetryBudget - TimeSpan.FromSeconds(1)).TotalMilliseconds
            / (MaxInCallRetries + 1)));
}

/// <summary>Validates <see cref="RelayOptions"/> at start-up; messages name the setting as an operator writes it.</summary>
internal sealed class RelayOptionsValidator : IValidateOptions<RelayOptions>
{
    public ValidateOptionsResult Validate(string? name, RelayOptions options)
    {
        var failures = new List<string>();
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.MaxAttempts), options.MaxAttempts, 1, 100);
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.ExpectedInstanceCount), options.ExpectedInstanceCount, 1, 1000);
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.MaxInCallRetries), options.MaxInCallRetries, 0, 2);
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.InCallRetryBudget), options.InCallRetryBudget, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.InCallRetryDelay), options.InCallRetryDelay, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(5));
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.BulkThreshold), options.BulkThreshold, 1, 10_000);
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.GatherWindow), options.GatherWindow, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.MaxItemsPerOrder), options.MaxItemsPerOrder, 1, Bulk.BulkLimits.MaxEventsPerCall - 1);
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.AttemptTimeout), options.AttemptTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(2));
        SettingRules.Range(failures, RelayOptions.SectionName, nameof(RelayOptions.OrderingMaxHeldPerKey), options.OrderingMaxHeldPerKey, 1, 100_000);
        if (!RelayOptions.OrderingModes.Any(mode => string.Equals(options.Ordering?.Trim(), mode, StringComparison.OrdinalIgnoreCase)))
        {
            failures.Add($"{RelayOptions.SectionName}__{nameof(RelayOptions.Ordering)}: '{options.Ordering}' is not one of {string.Join(", ", RelayOptions.OrderingModes)}");
        }
        if (failures.Count == 0 && options.LongestDelivery > RelayOptions.MessageLockDuration)
        {
            failures.Add(
                $"{RelayOptions.SectionName}__{nameof(RelayOptions.AttemptTimeout)}: {options.AttemptTimeout} lets one delivery take up to {options.LongestDelivery} " +
                $"({RelayOptions.MaxCallsPerPlan} calls of {options.MaxInCallRetries + 1} tries each, with {RelayOptions.SectionName}__{nameof(RelayOptions.InCallRetryBudget)} {options.InCallRetryBudget} of waiting, " +
                $"then {RelayOptions.SettlementAllowance} to settle), longer than the {RelayOptions.MessageLockDuration} Service Bus message lock; " +
                $"with {RelayOptions.SectionName}__{nameof(RelayOptions.MaxInCallRetries)} {options.MaxInCallRetries} it must be at most {options.MaxFittingAttemptTimeout}");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
