using Klaviyo.Functions.Local;
using Klaviyo.Functions.Settings;

namespace Klaviyo.Functions.Tests.Local;

[TestClass]
public sealed class LocalOptionsValidatorTests
{
    private static IReadOnlyList<string> Failures(LocalOptions options) => [.. new LocalOptionsValidator().Validate(null, options).Failures ?? []];

    [TestMethod]
    public void Validate_Defaults_Pass() => Assert.IsEmpty(Failures(new LocalOptions()));

    [TestMethod]
    public void Validate_DefaultLease_IsTheAzureLock() => Assert.AreEqual(RelayOptions.MessageLockDuration, new LocalOptions().LeaseDuration);

    [TestMethod]
    public void Validate_LeaseShorterThanTheDeliveryBound_FailsNamingTheSettingAndTheMinimum()
    {
        var failure = Failures(new LocalOptions { LeaseDuration = TimeSpan.FromSeconds(119) }).Single();

        Assert.StartsWith("Local__LeaseDuration: 00:01:59", failure);
        Assert.Contains("must be at least 00:02:00", failure);
    }

    [TestMethod]
    public void Validate_LeaseAtTheBound_Passes() =>
        Assert.IsEmpty(Failures(new LocalOptions { LeaseDuration = LocalOptionsValidator.MinLeaseDuration }));

    [TestMethod]
    public void Validate_LeaseOverAnHour_FailsNamingTheSetting() =>
        Assert.StartsWith("Local__LeaseDuration: 01:00:01 is not between 00:02:00 and 01:00:00", Failures(new LocalOptions { LeaseDuration = TimeSpan.FromSeconds(3601) }).Single());

    [TestMethod]
    public void MinLeaseDuration_OutlastsTheLongestDeliveryTheRelayAccepts()
    {
        // The slowest Relay__ settings the relay's validator lets through: every try at its longest, every in-call retry.
        var slowest = new RelayOptions { MaxInCallRetries = 2, InCallRetryBudget = TimeSpan.FromSeconds(5) };
        slowest.AttemptTimeout = slowest.MaxFittingAttemptTimeout;
        Assert.IsFalse(new RelayOptionsValidator().Validate(null, slowest).Failed);

        Assert.IsGreaterThanOrEqualTo(slowest.LongestDelivery, LocalOptionsValidator.MinLeaseDuration);
    }
}
