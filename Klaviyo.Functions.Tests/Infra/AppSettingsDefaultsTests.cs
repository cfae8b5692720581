using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Klaviyo.Functions.Klaviyo;
using Microsoft.Extensions.Configuration;

namespace Klaviyo.Functions.Tests.Infra;

/// <summary>
/// One home for each default: the code. The Bicep and the local sample write the defaults out so an operator sees
/// them, and a written value overrides the code's, so each one must equal the code's default (bound the way the app
/// binds it), or be listed here with the reason it differs.
/// </summary>
[TestClass]
public sealed partial class AppSettingsDefaultsTests
{
    // Values that are not the code's default on purpose, with the reason.
    private static readonly Dictionary<string, string> DeliberatelyDifferent = new(StringComparer.Ordinal)
    {
        ["Klaviyo__PrivateApiKey"] = "the secret (a Key Vault reference in Azure, a placeholder in the sample)",
        ["Ingest__SigningSecret"] = "a Key Vault reference when a signing secret is deployed",
        ["Relay__ExpectedInstanceCount"] = "Azure: the most instances Flex may run (maximumInstanceCount), so each takes its share of Klaviyo's limits",
    };

    private static readonly Type[] OptionsTypes = [.. typeof(KlaviyoOptions).Assembly.GetTypes()
        .Where(t => t is { IsClass: true, IsAbstract: false } && t.Name.EndsWith("Options", StringComparison.Ordinal)
                    && t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true })];

    [TestMethod]
    public void Bicep_EveryWrittenOptionsValue_EqualsTheCodeDefault()
    {
        var differing = BicepOptionsValues()
            .Where(v => !DeliberatelyDifferent.ContainsKey(v.Setting))
            .Select(v => Difference(v.Setting, v.Value))
            .OfType<string>()
            .ToList();

        Assert.IsEmpty(differing, "Bicep restates a default with another value (it would override the code): " + string.Join("; ", differing));
    }

    [TestMethod]
    public void LocalSample_EveryWrittenOptionsValue_EqualsTheCodeDefault()
    {
        var differing = SampleOptionsValues()
            .Where(v => !DeliberatelyDifferent.ContainsKey(v.Setting))
            .Select(v => Difference(v.Setting, v.Value))
            .OfType<string>()
            .ToList();

        Assert.IsEmpty(differing, "local.settings.sample.json restates a default with another value: " + string.Join("; ", differing));
    }

    [TestMethod]
    public void BicepOptionsValues_ResolveLiteralsAndMainParameterDefaults()
    {
        // Guards the resolver: if it found nothing, the tests above could not fail.
        var values = BicepOptionsValues().ToDictionary(v => v.Setting, v => v.Value, StringComparer.Ordinal);

        Assert.AreEqual("2", values["Relay__MaxInCallRetries"]); // a literal in functionapp.bicep
        Assert.AreEqual("email", values["Klaviyo__Consent"]); // main.bicep: param klaviyoConsent string = 'email'
        Assert.AreEqual("false", values["Klaviyo__SmsConsent"]); // toLower(string(bool param))
        Assert.AreEqual("10", values["Relay__MaxAttempts"]); // string(int param)
        Assert.IsGreaterThanOrEqualTo(15, values.Count);
        Assert.IsGreaterThanOrEqualTo(15, SampleOptionsValues().Count());
    }

    [TestMethod]
    [DataRow("Relay__MaxInCallRetries", "3")]
    [DataRow("Relay__InCallRetryDelay", "00:00:01")]
    [DataRow("Klaviyo__Consent", "email,sms")]
    [DataRow("Klaviyo__FlattenProperties", "true")]
    [DataRow("Ingest__MaxEventBytes", "65536")]
    public void Difference_ValueOtherThanTheDefault_IsReported(string setting, string value)
    {
        Assert.IsNotNull(Difference(setting, value));
    }

    [TestMethod]
    [DataRow("Relay__InCallRetryDelay", "00:00:00.500")] // the same TimeSpan written another way
    [DataRow("Klaviyo__SmsConsent", "False")]
    public void Difference_SameValueWrittenAnotherWay_IsNotReported(string setting, string value)
    {
        Assert.IsNull(Difference(setting, value));
    }

    /// <summary>Null when <paramref name="value"/> binds to the code's default, otherwise a message naming both.</summary>
    private static string? Difference(string setting, string value)
    {
        var parts = setting.Split("__");
        var type = OptionsTypes.Single(t => (string)t.GetField("SectionName")!.GetRawConstantValue()! == parts[0]);
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [string.Join(":", parts)] = value })
            .Build();
        var bound = configuration.GetSection(parts[0]).Get(type) ?? Activator.CreateInstance(type)!;
        var defaults = Activator.CreateInstance(type)!;
        var (written, code) = (Read(bound, parts), Read(defaults, parts));
        return Equals(written, code) ? null : $"{setting} = '{value}' but the code's default is '{code}'";
    }

    private static object? Read(object options, string[] path)
    {
        object? current = options;
        foreach (var name in path.Skip(1))
        {
            current = current?.GetType().GetProperty(name)!.GetValue(current);
        }
        return current;
    }

    private static bool IsOptionsSetting(string name) =>
        name.Split("__") is [var section, _, ..] && OptionsTypes.Any(t => (string)t.GetField("SectionName")!.GetRawConstantValue()! == section);

    /// <summary>The options settings of <c>var appSettings</c> whose value is known before deployment: a literal, or a
    /// parameter that main.bicep passes through with a default. Anything else (computed) must be listed above.</summary>
    private static IEnumerable<(string Setting, string Value)> BicepOptionsValues()
    {
        var main = File.ReadAllText(Path.Combine(AppSettingsCoverageTests.RepoRoot(), "infra/main.bicep"));
        foreach (var (setting, raw) in AppSettingsCoverageTests.BicepAppSettings())
        {
            if (!IsOptionsSetting(setting) || DeliberatelyDifferent.ContainsKey(setting))
            {
                continue;
            }
            var literal = Literal().Match(raw);
            if (literal.Success)
            {
                yield return (setting, literal.Groups["text"].Value);
                continue;
            }
            var parameter = Parameter().Match(raw);
            Assert.IsTrue(parameter.Success, $"{setting}: '{raw}' is neither a literal nor a parameter; list it as deliberately different with a reason");
            var name = parameter.Groups["name"].Value;
            Assert.Contains($"    {name}: {name}", main, $"main.bicep must pass {name} through unchanged");
            var declaration = new Regex($@"^param {name} (?<type>\w+) = (?<default>.+)$", RegexOptions.Multiline).Match(main);
            Assert.IsTrue(declaration.Success, $"main.bicep: param {name} has no default");
            var value = declaration.Groups["default"].Value.Trim();
            yield return (setting, value.StartsWith('\'') ? value.Trim('\'') : value.ToLowerInvariant());
        }
    }

    private static IEnumerable<(string Setting, string Value)> SampleOptionsValues()
    {
        using var sample = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppSettingsCoverageTests.RepoRoot(), "local.settings.sample.json")));
        foreach (var property in sample.RootElement.GetProperty("Values").EnumerateObject())
        {
            if (IsOptionsSetting(property.Name) && !DeliberatelyDifferent.ContainsKey(property.Name))
            {
                yield return (property.Name, property.Value.GetString()!);
            }
        }
    }

    [GeneratedRegex(@"^'(?<text>[^'$]*)'$")]
    private static partial Regex Literal();

    [GeneratedRegex(@"^(?:toLower\(string\((?<name>\w+)\)\)|string\((?<name>\w+)\)|(?<name>\w+))$")]
    private static partial Regex Parameter();
}
