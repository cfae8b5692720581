namespace Klaviyo.Functions.Bulk;

/// <summary>What one call of each bulk endpoint may carry (spec 8; klaviyo-api-facts 2.3, 2.5–2.7).</summary>
internal static class BulkLimits
{
    public const int MaxEventsPerCall = 1_000;
    public const int MaxProfilesPerImportJob = 10_000;
    public const int MaxProfilesPerSubscriptionJob = 1_000;
    public const int MaxProfilesPerUnsubscribeJob = 100;
    public const int MaxIdsPerListCall = 1_000;

    /// <summary>Klaviyo's "5 MB" per payload, read as 5,000,000 bytes so either meaning of a megabyte is respected.</summary>
    public const int MaxBodyBytes = 5_000_000;
}
