using System.Text.Json;
using Klaviyo.Functions.Telemetry;
using Klaviyo.Functions.Health;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Tests.Diagnostics;

[TestClass]
public sealed class HealthFunctionTests
{
    private const string Key = "pk_health_secret_123";

    private static Dictionary<string, string?> ValidSettings() => new()
    {
        ["Klaviyo:PrivateApiKey"] = Key,
        ["ServiceBus:fullyQualifiedNamespace"] = "sb-test.servicebus.windows.net",
        ["EventsQueueName"] = "klaviyo-events",
    };

    private static (int Status, JsonElement Body, string Raw) Get(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddKlaviyoOptions()
            .AddRelayTelemetry(configuration)
            .AddSingleton<ConfigurationHealth>();
        using var provider = services.BuildServiceProvider();
        var function = new HealthFunction(provider.GetRequiredService<ConfigurationHealth>());

        var result = (JsonResult)function.Run(new DefaultHttpContext().Request);

        var raw = JsonSerializer.Serialize(result.Value);
        return (result.StatusCode!.Value, JsonDocument.Parse(raw).RootElement.Clone(), raw);
    }

    private static JsonElement CheckNamed(JsonElement body, string name) =>
        body.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    private static List<string?> SettingsOf(JsonElement check) =>
        [.. check.GetProperty("settings").EnumerateArray().Select(s => s.GetString())];

    [TestMethod]
    public void Health_WithValidConfiguration_Answers200AndEveryCheckPasses()
    {
        var (status, body, raw) = Get(ValidSettings());

        Assert.AreEqual(StatusCodes.Status200OK, status);
        Assert.AreEqual("healthy", body.GetProperty("status").GetString());
        Assert.IsTrue(body.GetProperty("checks").EnumerateArray().All(c => c.GetProperty("status").GetString() == "pass"), raw);
        Assert.AreEqual("pass", CheckNamed(body, "Klaviyo").GetProperty("status").GetString());
        Assert.DoesNotContain(Key, raw);
    }

    [TestMethod]
    public void Health_WithoutKlaviyoKey_Answers503NamingTheSetting()
    {
        var settings = ValidSettings();
        settings.Remove("Klaviyo:PrivateApiKey");

        var (status, body, _) = Get(settings);

        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, status);
        Assert.AreEqual("unhealthy", body.GetProperty("status").GetString());
        var klaviyo = CheckNamed(body, "Klaviyo");
        Assert.AreEqual("fail", klaviyo.GetProperty("status").GetString());
        Assert.Contains("Klaviyo__PrivateApiKey", SettingsOf(klaviyo));
    }

    [TestMethod]
    public void Health_WithInvalidSettingValues_NamesSettingsButNotValues()
    {
        var settings = ValidSettings();
        settings["Klaviyo:ListId"] = "LIST-secretish";
        settings["Klaviyo:Consent"] = "fax";

        var (status, body, raw) = Get(settings);

        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, status);
        var failing = SettingsOf(CheckNamed(body, "Klaviyo"));
        Assert.Contains("Klaviyo__ListId", failing);
        Assert.Contains("Klaviyo__Consent", failing);
        Assert.DoesNotContain("LIST-secretish", raw);
        Assert.DoesNotContain("fax", raw);
    }

    [TestMethod]
    public void Health_WithUnresolvedKeyVaultReference_Answers503WithoutTheReference()
    {
        // App Service leaves the literal reference in the setting when the identity cannot read the secret.
        const string reference = "@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/klaviyo-private-api-key/)";
        var settings = ValidSettings();
        settings["Klaviyo:PrivateApiKey"] = reference;

        var (status, body, raw) = Get(settings);

        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, status);
        var check = CheckNamed(body, "KeyVaultReferences");
        Assert.AreEqual("fail", check.GetProperty("status").GetString());
        Assert.AreEqual("Klaviyo__PrivateApiKey", SettingsOf(check).Single());
        Assert.DoesNotContain("kv-x.vault.azure.net", raw);
    }

    [TestMethod]
    public void Health_WithoutServiceBusConnection_Answers503()
    {
        var settings = ValidSettings();
        settings.Remove("ServiceBus:fullyQualifiedNamespace");

        var (status, body, _) = Get(settings);

        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, status);
        var check = CheckNamed(body, "ServiceBus");
        Assert.AreEqual("fail", check.GetProperty("status").GetString());
        Assert.Contains("ServiceBus__fullyQualifiedNamespace", SettingsOf(check));
    }

    [TestMethod]
    public void Health_WithConnectionStringsSectionOnly_FailsAsTheSenderWould()
    {
        // The sender reads the connection string from setting "ServiceBus", not ConnectionStrings:ServiceBus;
        // health used to pass this form while the sender could not be built.
        var settings = ValidSettings();
        settings.Remove("ServiceBus:fullyQualifiedNamespace");
        settings["ConnectionStrings:ServiceBus"] = "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;";

        var (status, body, raw) = Get(settings);

        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, status);
        Assert.AreEqual("fail", CheckNamed(body, "ServiceBus").GetProperty("status").GetString());
        Assert.DoesNotContain("SAS_KEY_VALUE", raw);
    }

    [TestMethod]
    [DataRow(null, DisplayName = "missing")]
    [DataRow(" klaviyo-events", DisplayName = "leading space")]
    public void Health_WithQueueNameTheSenderRefuses_Answers503NamingEventsQueueName(string? queueName)
    {
        var settings = ValidSettings();
        settings["EventsQueueName"] = queueName;

        var (status, body, _) = Get(settings);

        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, status);
        var check = CheckNamed(body, "ServiceBus");
        Assert.AreEqual("fail", check.GetProperty("status").GetString());
        Assert.AreEqual("EventsQueueName", SettingsOf(check).Single());
    }

    [TestMethod]
    public void Health_WithServiceBusConnectionString_PassesServiceBusCheck()
    {
        var settings = ValidSettings();
        settings.Remove("ServiceBus:fullyQualifiedNamespace");
        settings["ServiceBus"] = "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;";

        var (_, body, raw) = Get(settings);

        Assert.AreEqual("pass", CheckNamed(body, "ServiceBus").GetProperty("status").GetString());
        Assert.DoesNotContain("SAS_KEY_VALUE", raw);
    }
}
