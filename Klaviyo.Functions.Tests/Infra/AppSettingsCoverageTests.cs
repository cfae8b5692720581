using System.Reflection;
using System.Text.RegularExpressions;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;

namespace Klaviyo.Functions.Tests.Infra;

/// <summary>Every setting the code reads must be an app setting in the Bicep that deploys the app, or the deployed
/// relay silently runs on defaults (or fails start-up) for it.</summary>
[TestClass]
public sealed partial class AppSettingsCoverageTests
{
    private const string AppSettingsBicep = "infra/modules/functionapp.bicep";

    // Settings the code reads through configuration names rather than an options class.
    private static readonly string[] FixedSettings =
    [
        "ServiceBus__fullyQualifiedNamespace",
        "ServiceBus__credential",
        "ServiceBus__clientId",
        "EventsQueueName",
        "AZURE_CLIENT_ID", // the identity the worker's telemetry exporter uses (AzureCredentials)
    ];

    // Deliberately absent from Azure: local mode only (spec section 9). A setting belongs here only with its reason.
    private static readonly string[] LocalOnlySettings =
    [
        "Klaviyo__DryRun", // prints Klaviyo calls instead of sending them; meaningless for the deployed relay
    ];

    // Left to the code on purpose, in Azure and in the sample: a setting belongs here only with its reason.
    internal static readonly string[] CodeOwnedSettings =
    [
        "Klaviyo__Revision", // the request bodies are written for the code's revision (KlaviyoApi.DefaultRevision); a deployed value would pin it past an upgrade
    ];

    // Whole sections that only local mode reads (Local:DeadLetterPath and friends).
    private static readonly string[] LocalOnlySections = ["Local"];

    // Flex Consumption rejects or ignores these (the runtime is declared in functionAppConfig.runtime).
    private static readonly string[] FlexDeprecatedSettings =
    [
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
    ];

    [TestMethod]
    public void Bicep_AppSettings_CoverEverySettingTheCodeReads()
    {
        var declared = BicepAppSettings();
        var missing = SettingsTheCodeReads().Where(s => !declared.ContainsKey(s)).ToList();

        Assert.IsEmpty(missing, $"Add these to `var appSettings` in {AppSettingsBicep} (or, if local-only, to the exclusion list here with a reason): {string.Join(", ", missing)}");
    }

    [TestMethod]
    public void SettingsTheCodeReads_IncludeKlaviyoOptionsAndFixedNames()
    {
        // Guards the reflection itself: if it found nothing, the coverage test above could not fail.
        var read = SettingsTheCodeReads();

        Assert.Contains("Klaviyo__PrivateApiKey", read);
        Assert.Contains("Klaviyo__FlattenProperties", read);
        Assert.Contains("EventsQueueName", read);
        Assert.DoesNotContain("Klaviyo__DryRun", read);
        Assert.DoesNotContain("Klaviyo__ConsentChannels", read); // computed, not bound
    }

    [TestMethod]
    public void CodeOwnedSettings_AreSetNeitherInBicepNorInTheSample()
    {
        var declared = BicepAppSettings();
        var main = File.ReadAllText(Path.Combine(RepoRoot(), "infra/main.bicep"));
        var sample = File.ReadAllText(Path.Combine(RepoRoot(), "local.settings.sample.json"));

        foreach (var setting in CodeOwnedSettings)
        {
            Assert.IsFalse(declared.ContainsKey(setting), $"{setting} is left to the code; remove it from {AppSettingsBicep}");
            Assert.DoesNotContain($"\"{setting}\"", sample);
        }
        // The revision lives in one file: KlaviyoApi.DefaultRevision.
        Assert.DoesNotContain(KlaviyoApi.DefaultRevision, main);
        Assert.DoesNotContain(KlaviyoApi.DefaultRevision, sample);
    }

    [TestMethod]
    public void Bicep_KlaviyoPrivateApiKey_IsAKeyVaultReference()
    {
        var declared = BicepAppSettings();
        var app = File.ReadAllText(Path.Combine(RepoRoot(), AppSettingsBicep));

        Assert.AreEqual("keyVaultReference(klaviyoPrivateApiKeySecretUri)", declared["Klaviyo__PrivateApiKey"]);
        Assert.AreEqual("empty(ingestSigningSecretUri) ? '' : keyVaultReference(ingestSigningSecretUri)", declared["Ingest__SigningSecret"]);
        // The reference the Bicep writes is what the app recognises as one while it is unresolved.
        const string prefix = global::Klaviyo.Functions.Settings.KeyVaultReference.Prefix;
        Assert.Contains($"func keyVaultReference(secretUri string) string => '{prefix}SecretUri=${{secretUri}})'", app);
        Assert.AreEqual(1, app.Split(prefix).Length - 1, "one Key Vault reference template in the Bicep");
    }

    [TestMethod]
    public void Bicep_ServiceBusCredential_IsManagedIdentity()
    {
        Assert.AreEqual("'managedidentity'", BicepAppSettings()["ServiceBus__credential"]);
    }

    [TestMethod]
    public void Bicep_HostStorage_NamesTheAccountAndTheTableEndpointWithManagedIdentity()
    {
        var declared = BicepAppSettings();

        // accountName beside blobServiceUri avoids Flex's start-up race; the table holds the host's diagnostic events.
        Assert.AreEqual("storageAccountName", declared.GetValueOrDefault("AzureWebJobsStorage__accountName"));
        Assert.AreEqual("storageBlobEndpoint", declared.GetValueOrDefault("AzureWebJobsStorage__blobServiceUri"));
        Assert.AreEqual("storageTableEndpoint", declared.GetValueOrDefault("AzureWebJobsStorage__tableServiceUri"));
        Assert.AreEqual("'managedidentity'", declared.GetValueOrDefault("AzureWebJobsStorage__credential"));
        Assert.IsFalse(declared.ContainsKey("AzureWebJobsStorage"), "host storage must not use a connection string");
    }

    [TestMethod]
    public void Bicep_Roles_GrantTableDataContributorOnHostStorage()
    {
        var roles = File.ReadAllText(Path.Combine(RepoRoot(), "infra/modules/roles.bicep"));

        Assert.Contains("storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'", roles);
        Assert.Contains("for roleId in [roles.storageBlobDataOwner, roles.storageTableDataContributor]", roles);
    }

    [TestMethod]
    public void Bicep_AlwaysReady_IsOffByDefaultAndNamesTheRelayFunction()
    {
        var main = File.ReadAllText(Path.Combine(RepoRoot(), "infra/main.bicep"));
        var app = File.ReadAllText(Path.Combine(RepoRoot(), AppSettingsBicep));

        Assert.Contains("param relayAlwaysReadyInstances int = 0", main);
        // Flex names per-function always-ready groups "function:<name>"; a name that is no function would keep nothing warm.
        Assert.Contains($"name: 'function:{Functions.Relay.RelayFunction.Name}'", app);
        Assert.Contains("alwaysReady: relayAlwaysReadyInstances > 0 ?", app);
    }

    [TestMethod]
    public void Bicep_AppSettings_SetNoFlexDeprecatedSetting()
    {
        var declared = BicepAppSettings();

        Assert.IsEmpty(FlexDeprecatedSettings.Where(declared.ContainsKey).ToList());
    }

    [TestMethod]
    public void LocalSettingsSample_CoversEveryOptionsSetting()
    {
        using var sample = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "local.settings.sample.json")));
        var values = sample.RootElement.GetProperty("Values").EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        // Locally the emulator's connection string (setting "ServiceBus") replaces the managed-identity trio.
        var missing = SettingsTheCodeReads()
            .Where(s => !s.StartsWith("ServiceBus__", StringComparison.Ordinal) && s != "AZURE_CLIENT_ID" && !values.Contains(s))
            .ToList();

        Assert.IsEmpty(missing, $"Add these to local.settings.sample.json: {string.Join(", ", missing)}");
        Assert.Contains("ServiceBus", values);
    }

    [TestMethod]
    public void EmulatorConfig_EventsQueue_FitsEmulatorLimitsAndMatchesTheApp()
    {
        using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "infra/local/servicebus-emulator-config.json")));
        var ns = config.RootElement.GetProperty("UserConfig").GetProperty("Namespaces").EnumerateArray().Single();
        var queue = ns.GetProperty("Queues").EnumerateArray().Single();
        var properties = queue.GetProperty("Properties");

        Assert.AreEqual("sbemulatorns", ns.GetProperty("Name").GetString());
        using var sample = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "local.settings.sample.json")));
        Assert.AreEqual(sample.RootElement.GetProperty("Values").GetProperty(global::Klaviyo.Functions.Queue.MessageProperties.QueueNameSetting).GetString(), queue.GetProperty("Name").GetString());
        Assert.IsTrue(properties.GetProperty("RequiresDuplicateDetection").GetBoolean());
        Assert.IsTrue(properties.GetProperty("DeadLetteringOnMessageExpiration").GetBoolean());
        Assert.IsInRange(1, 10, properties.GetProperty("MaxDeliveryCount").GetInt32());
        Assert.IsLessThanOrEqualTo(TimeSpan.FromMinutes(5), System.Xml.XmlConvert.ToTimeSpan(properties.GetProperty("LockDuration").GetString()!));
        Assert.IsLessThanOrEqualTo(TimeSpan.FromMinutes(5), System.Xml.XmlConvert.ToTimeSpan(properties.GetProperty("DuplicateDetectionHistoryTimeWindow").GetString()!));
        Assert.IsLessThanOrEqualTo(TimeSpan.FromHours(1), System.Xml.XmlConvert.ToTimeSpan(properties.GetProperty("DefaultMessageTimeToLive").GetString()!));
    }

    [TestMethod]
    public void EmulatorCompose_StoresStateInSqlServer_NotTheRetiredSqlEdge()
    {
        var compose = File.ReadAllText(Path.Combine(RepoRoot(), "infra/local/docker-compose.yml"));

        Assert.DoesNotContain("azure-sql-edge", compose);
        Assert.Contains("image: mcr.microsoft.com/mssql/server:", compose);
        Assert.Contains("SQL_SERVER: sqlserver", compose);
    }

    /// <summary>Options classes with a <c>public const string SectionName</c>: each bindable property is
    /// <c>Section__Property</c> (nested option objects recurse), less the local-only exclusions.</summary>
    private static List<string> SettingsTheCodeReads()
    {
        var optionsTypes = typeof(KlaviyoOptions).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && t.Name.EndsWith("Options", StringComparison.Ordinal))
            .Select(t => (Type: t, Section: t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)))
            .Where(x => x.Section is { IsLiteral: true } && x.Section.FieldType == typeof(string))
            .ToList();

        var settings = new List<string>(FixedSettings);
        foreach (var (type, field) in optionsTypes)
        {
            var section = (string)field!.GetRawConstantValue()!;
            if (LocalOnlySections.Contains(section, StringComparer.OrdinalIgnoreCase))
            {
                continue;
            }
            settings.AddRange(Bindable(type, section));
        }
        return [.. settings.Except(LocalOnlySettings, StringComparer.Ordinal).Except(CodeOwnedSettings, StringComparer.Ordinal).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
    }

    private static IEnumerable<string> Bindable(Type type, string prefix)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.SetMethod is not { IsPublic: true } || property.GetIndexParameters().Length > 0)
            {
                continue;
            }
            var name = $"{prefix}__{property.Name}";
            var t = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            var isLeaf = t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan)
                         || t == typeof(DateTimeOffset) || t == typeof(DateTime) || t == typeof(Uri) || t == typeof(Guid)
                         || typeof(System.Collections.IEnumerable).IsAssignableFrom(t);
            if (isLeaf)
            {
                yield return name;
            }
            else
            {
                foreach (var nested in Bindable(t, name))
                {
                    yield return nested;
                }
            }
        }
    }

    /// <summary>The keys (and raw values) of <c>var appSettings = { … }</c> in the Bicep file that declares the app settings.</summary>
    internal static Dictionary<string, string> BicepAppSettings()
    {
        var lines = File.ReadAllLines(Path.Combine(RepoRoot(), AppSettingsBicep));
        var start = Array.FindIndex(lines, l => l.StartsWith("var appSettings = {", StringComparison.Ordinal));
        Assert.AreNotEqual(-1, start, $"`var appSettings = {{` not found in {AppSettingsBicep}");
        var end = Array.FindIndex(lines, start + 1, l => l == "}");
        Assert.AreNotEqual(-1, end, "the appSettings object does not close with `}` on its own line");

        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = start + 1; i < end; i++)
        {
            var match = BicepProperty().Match(lines[i]);
            if (match.Success)
            {
                settings[match.Groups["name"].Value] = match.Groups["value"].Value.Trim();
            }
        }
        return settings;
    }

    internal static string RepoRoot()
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

    [GeneratedRegex(@"^\s*'?(?<name>[A-Za-z_][A-Za-z0-9_]*)'?\s*:\s*(?<value>.*)$")]
    private static partial Regex BicepProperty();
}
