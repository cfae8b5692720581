using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Tests.Klaviyo;

[TestClass]
public sealed class KlaviyoOptionsValidatorTests
{
    private static KlaviyoOptions Valid() => new() { PrivateApiKey = "pk_test_123" };

    [TestMethod]
    public void Validate_WithDefaultsAndKey_Succeeds()
    {
        var result = new KlaviyoOptionsValidator().Validate(null, Valid());
        Assert.IsTrue(result.Succeeded, result.FailureMessage);
    }

    [TestMethod]
    public void Validate_WithoutKey_NamesTheSetting()
    {
        var options = Valid();
        options.PrivateApiKey = "";
        var result = new KlaviyoOptionsValidator().Validate(null, options);
        Assert.IsTrue(result.Failed);
        Assert.Contains("Klaviyo__PrivateApiKey is required", result.Failures!.ToList());
    }

    [TestMethod]
    [DataRow("fax", "Klaviyo__Consent: 'fax' is not one of email, sms")]
    [DataRow("email, push", "Klaviyo__Consent: 'push' is not one of email, sms")]
    public void Validate_WithUnknownConsent_NamesTheValue(string consent, string expected)
    {
        var options = Valid();
        options.Consent = consent;
        var result = new KlaviyoOptionsValidator().Validate(null, options);
        Assert.Contains(expected, result.Failures!.ToList());
    }

    [TestMethod]
    [DataRow("account")]
    [DataRow("")]
    public void Validate_WithUnknownGroupMode_NamesTheSettingAndTheChoices(string mode)
    {
        var options = Valid();
        options.GroupMode = mode;
        var result = new KlaviyoOptionsValidator().Validate(null, options);

        Assert.IsTrue(result.Failed);
        Assert.Contains($"Klaviyo__GroupMode: '{mode}' is not one of list, profile, skip", result.FailureMessage);
    }

    [TestMethod]
    [DataRow("list")]
    [DataRow("profile")]
    [DataRow("Skip")]
    public void Validate_WithKnownGroupMode_Succeeds(string mode)
    {
        var options = Valid();
        options.GroupMode = mode;

        Assert.IsTrue(new KlaviyoOptionsValidator().Validate(null, options).Succeeded);
    }

    [TestMethod]
    public void Validate_WithLegacyConsentValues_SucceedsAndIgnoresThem()
    {
        var options = Valid();
        options.Consent = "email,web,directmail,mobile,sms";
        Assert.IsTrue(new KlaviyoOptionsValidator().Validate(null, options).Succeeded);
        Assert.AreEqual(ConsentChannels.Email | ConsentChannels.Sms, options.ConsentChannels);
    }

    [TestMethod]
    [DataRow("LIST-1")]
    [DataRow("a b")]
    public void Validate_WithNonAlphanumericListId_Fails(string listId)
    {
        var options = Valid();
        options.ListId = listId;
        var result = new KlaviyoOptionsValidator().Validate(null, options);
        Assert.IsTrue(result.Failed);
        Assert.StartsWith("Klaviyo__ListId:", result.Failures!.Single());
    }

    [TestMethod]
    [DataRow("2026-13-01")]
    [DataRow("latest")]
    public void Validate_WithBadRevision_Fails(string revision)
    {
        var options = Valid();
        options.Revision = revision;
        Assert.StartsWith("Klaviyo__Revision:", new KlaviyoOptionsValidator().Validate(null, options).Failures!.Single());
    }

    [TestMethod]
    public void Validate_WithUnresolvedKeyVaultReference_LetsTheAppStart()
    {
        // On a first provision references resolve after start; health reports it and the relay waits (KeyVaultTimingTests).
        var options = Valid();
        options.PrivateApiKey = "@Microsoft.KeyVault(SecretUri=https://kv-relay.vault.azure.net/secrets/klaviyo-private-key/)";
        Assert.IsTrue(new KlaviyoOptionsValidator().Validate(null, options).Succeeded);
        Assert.IsTrue(KlaviyoOptionsValidator.IsUnresolvedKeyVaultReference(options.PrivateApiKey));
        Assert.IsFalse(KlaviyoOptionsValidator.IsUnresolvedKeyVaultReference("pk_live_abc"));
    }

    [TestMethod]
    public void ToString_NeverShowsTheKey()
    {
        var options = Valid();
        Assert.IsFalse(options.ToString().Contains("pk_test_123", StringComparison.Ordinal));
    }
    [TestMethod]
    [DataRow("placedOrder")]
    [DataRow("orderCompleted")]
    [DataRow("event")]
    [DataRow("PlacedOrder")]
    public void Validate_WithKnownOrderCompleted_Succeeds(string mode)
    {
        var options = Valid();
        options.OrderCompleted = mode;

        var result = new KlaviyoOptionsValidator().Validate(null, options);

        Assert.IsTrue(result.Succeeded, result.FailureMessage);
    }

    [TestMethod]
    public void Validate_WithUnknownOrderCompleted_NamesTheSettingAndTheChoices()
    {
        var options = Valid();
        options.OrderCompleted = "orders";

        var result = new KlaviyoOptionsValidator().Validate(null, options);

        Assert.Contains("Klaviyo__OrderCompleted: 'orders' is not one of orderCompleted, placedOrder", result.Failures!.ToList());
    }

    [TestMethod]
    [DataRow("PlacedOrderMetric", "", "Klaviyo__PlacedOrderMetric must not be empty")]
    [DataRow("OrderedProductMetric", "   ", "Klaviyo__OrderedProductMetric must not be empty")]
    [DataRow("PlacedOrderMetric", "128", "Klaviyo__PlacedOrderMetric: must be shorter than 128 characters (it has 128)")]
    [DataRow("OrderedProductMetric", "placed order", "Klaviyo__OrderedProductMetric: 'placed order' must differ from Klaviyo__PlacedOrderMetric")]
    public void Validate_WithBadMetricName_NamesTheSetting(string setting, string value, string expected)
    {
        var options = Valid();
        var name = value == "128" ? new string('x', 128) : value;
        if (setting == nameof(KlaviyoOptions.PlacedOrderMetric))
        {
            options.PlacedOrderMetric = name;
        }
        else
        {
            options.OrderedProductMetric = name;
        }

        var result = new KlaviyoOptionsValidator().Validate(null, options);

        Assert.IsTrue(result.Failed);
        Assert.Contains(expected, result.Failures!.ToList());
    }

    [TestMethod]
    public void Validate_WithMetricNameOf127Characters_Succeeds()
    {
        var options = Valid();
        options.PlacedOrderMetric = new string('x', 127);

        Assert.IsTrue(new KlaviyoOptionsValidator().Validate(null, options).Succeeded);
    }
}
