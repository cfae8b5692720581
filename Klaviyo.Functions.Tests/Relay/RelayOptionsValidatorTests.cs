using System.Text;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
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
    public void Validate_OrderingModeAndValve_NamedAsOperatorsWriteThem()
    {
        var failures = new RelayOptionsValidator().Validate(null, new RelayOptions { Ordering = "users", OrderingMaxHeldPerKey = 0 }).Failures!.ToList();
        Assert.HasCount(2, failures);
        Assert.Contains("Relay__Ordering: 'users' is not one of profiles, off", failures);
        Assert.Contains("Relay__OrderingMaxHeldPerKey: 0 is not between 1 and 100000", failures);
        Assert.IsTrue(new RelayOptionsValidator().Validate(null, new RelayOptions { Ordering = " OFF " }).Succeeded);
        Assert.IsFalse(new RelayOptions { Ordering = "Off" }.OrderingEnabled);
        Assert.IsTrue(new RelayOptions().OrderingEnabled);
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
    public void Validate_AttemptTimeoutOfTwoMinutes_FailsNamingTheSettingAndTheLongestThatFits()
    {
        // Main accepted 2 min: 2 calls × (3 tries × 2 min + 5 s + 1 s) is over 12 minutes under a 2-minute lock.
        var failures = new RelayOptionsValidator().Validate(null, new RelayOptions { AttemptTimeout = TimeSpan.FromMinutes(2) }).Failures!.ToList();

        var failure = failures.Single();
        Assert.StartsWith("Relay__AttemptTimeout: 00:02:00 lets one delivery take up to 00:12:42", failure);
        Assert.Contains("longer than the 00:02:00 Service Bus message lock", failure);
        Assert.EndsWith("with Relay__MaxInCallRetries 2 it must be at most 00:00:13", failure);
    }

    [TestMethod]
    [DataRow(2, "00:00:13", true)]
    [DataRow(2, "00:00:13.001", false)]
    [DataRow(1, "00:00:19.500", true)]
    [DataRow(1, "00:00:19.501", false)]
    [DataRow(0, "00:00:39", true)]
    [DataRow(0, "00:00:39.001", false)]
    public void Validate_AttemptTimeoutAtTheLockBound_PassesUpToItAndFailsBeyond(int retries, string attemptTimeout, bool fits)
    {
        var options = new RelayOptions { MaxInCallRetries = retries, AttemptTimeout = TimeSpan.Parse(attemptTimeout, System.Globalization.CultureInfo.InvariantCulture) };

        var result = new RelayOptionsValidator().Validate(null, options);

        Assert.AreEqual(fits, result.Succeeded, result.FailureMessage);
        Assert.AreEqual(fits, options.LongestDelivery <= RelayOptions.MessageLockDuration);
    }

    [TestMethod]
    public void Validate_Defaults_LongestDeliveryFitsTheLockWithRoomToSpare()
    {
        var options = new RelayOptions();

        Assert.AreEqual(TimeSpan.FromSeconds(102), options.LongestDelivery, "2 × (3 × 10 s + 5 s + 1 s) + 30 s");
        Assert.AreEqual(TimeSpan.FromSeconds(13), options.MaxFittingAttemptTimeout);
    }

    [TestMethod]
    public void MessageLockDuration_MatchesTheQueueInTheTemplates()
    {
        var bicep = File.ReadAllText(Path.Combine(RepoRoot(), "infra", "modules", "servicebus.bicep"));
        var lockDuration = System.Text.RegularExpressions.Regex.Match(bicep, @"lockDuration:\s*'(?<value>[^']+)'").Groups["value"].Value;

        Assert.AreEqual(RelayOptions.MessageLockDuration, System.Xml.XmlConvert.ToTimeSpan(lockDuration));
    }

    [TestMethod]
    public void MaxCallsPerPlan_CoversEveryPlanOfTheEventMixWithListAndSmsConsent()
    {
        var transformer = new KlaviyoTransformer(new KlaviyoOptions { PrivateApiKey = "pk_test", ListId = "LIST1", Consent = "email,sms", SmsConsent = true, SendPageAsTrack = true });
        var longest = 0;
        foreach (var line in File.ReadLines(Path.Combine(KlaviyoSchemas.SharedDirectory, "bench", "event-mix.jsonl")).Where(l => l.Length > 0))
        {
            if (transformer.Transform(Encoding.UTF8.GetBytes(line)) is TransformResult.Planned planned)
            {
                longest = Math.Max(longest, planned.Plan.Steps.Count);
            }
        }

        Assert.AreEqual(RelayOptions.MaxCallsPerPlan, longest);
    }

    [TestMethod]
    public void Options_FromConfiguration_AttemptTimeoutBeyondTheLock_FailsOnFirstUse()
    {
        using var host = RelayTestHost.Create("http://127.0.0.1:1", new Dictionary<string, string?> { ["Relay:AttemptTimeout"] = "00:00:30" });
        var error = Assert.ThrowsExactly<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<RelayOptions>>().Value);
        Assert.StartsWith("Relay__AttemptTimeout: 00:00:30 lets one delivery take up to", error.Failures.Single());
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Klaviyo.Functions.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"Klaviyo.Functions.sln not found above {AppContext.BaseDirectory}");
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
    [TestMethod]
    [DataRow(0, false)]
    [DataRow(1, true)]
    [DataRow(999, true)]
    [DataRow(1000, false)]
    public void Validate_MaxItemsPerOrder_FitsOneBulkCallWithItsPlacedOrder(int items, bool valid)
    {
        var result = new RelayOptionsValidator().Validate(null, new RelayOptions { MaxItemsPerOrder = items });

        Assert.AreEqual(valid, result.Succeeded, result.FailureMessage);
        if (!valid)
        {
            Assert.Contains("Relay__MaxItemsPerOrder", result.FailureMessage!);
        }
    }
}
