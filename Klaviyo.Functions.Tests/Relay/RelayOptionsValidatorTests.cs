using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Tests.Relay;

[TestClass]
public sealed class RelayOptionsValidatorTests
{
    [TestMethod]
    public void Validate_Defaults_Succeed()
    {
        var result = new RelayOptionsValidator().Validate(null, new RelayOptions());
        Assert.IsTrue(result.Succeeded, result.FailureMessage);
    }

    [TestMethod]
    public void Validate_OutOfRangeValues_NameEachSettingAsOperatorsWriteIt()
    {
        var options = new RelayOptions
        {
            MaxAttempts = 0,
            ExpectedInstanceCount = 0,
            MaxInCallRetries = 3,
            InCallRetryBudget = TimeSpan.FromSeconds(30),
            AttemptTimeout = TimeSpan.Zero,
        };
        var failures = new RelayOptionsValidator().Validate(null, options).Failures!.ToList();
        Assert.HasCount(5, failures);
        Assert.Contains("Relay__MaxAttempts: 0 is not between 1 and 100", failures);
        Assert.Contains("Relay__MaxInCallRetries: 3 is not between 0 and 2", failures);
        Assert.Contains("Relay__InCallRetryBudget: 00:00:30 is not between 00:00:00 and 00:00:05", failures);
        Assert.Contains(f => f.StartsWith("Relay__ExpectedInstanceCount:", StringComparison.Ordinal), failures);
        Assert.Contains(f => f.StartsWith("Relay__AttemptTimeout:", StringComparison.Ordinal), failures);
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(10_001)]
    public void Validate_BulkThresholdOutOfRange_NamesTheSetting(int threshold)
    {
        var failures = new RelayOptionsValidator().Validate(null, new RelayOptions { BulkThreshold = threshold }).Failures!.ToList();
        Assert.Contains($"Relay__BulkThreshold: {threshold} is not between 1 and 10000", failures);
    }

    [TestMethod]
    public void Options_FromConfiguration_BindAndFailOnFirstUse()
    {
        using var host = RelayTestHost.Create("http://127.0.0.1:1", new Dictionary<string, string?> { ["Relay:MaxAttempts"] = "500" });
        var error = Assert.ThrowsExactly<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<RelayOptions>>().Value);
        Assert.Contains("Relay__MaxAttempts: 500 is not between 1 and 100", error.Failures.ToList());
    }
}
