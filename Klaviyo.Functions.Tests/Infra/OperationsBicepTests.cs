using System.Diagnostics.Metrics;
using System.Text.RegularExpressions;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Ingest;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Tests.Infra;

/// <summary>The workbook and alert rules in <c>infra/modules/operations.bicep</c> (spec section 11): they read metrics
/// the relay really emits, each is switched by a parameter of <c>main.bicep</c>, and the three alerts exist.
/// (<c>.ci/bicep</c> builds and lints the templates.)</summary>
[TestClass]
public sealed partial class OperationsBicepTests
{
    private const string OperationsBicep = "infra/modules/operations.bicep";

    private static readonly string[] Switches = ["deployWorkbook", "alertOnDeadLetters", "alertOnBacklogGrowing", "alertOnKlaviyoUnauthorized"];

    [TestMethod]
    public void Queries_NameOnlyMetricsTheRelayEmits()
    {
        var emitted = InstrumentNames();
        var queried = MetricName().Matches(Read(OperationsBicep)).Select(m => m.Value).Distinct().ToList();

        Assert.IsGreaterThanOrEqualTo(6, queried.Count, "the workbook reads the relay's metrics: " + string.Join(", ", queried));
        var unknown = queried.Where(name => !emitted.Contains(name)).ToList();
        Assert.IsEmpty(unknown, $"{OperationsBicep} queries metrics the relay does not emit: {string.Join(", ", unknown)} (emitted: {string.Join(", ", emitted.Order())})");
        foreach (var needed in new[] { RelayMetrics.DeliveredName, RelayMetrics.DeadLetteredName, RelayMetrics.KlaviyoRequestsName, IngestMetrics.AcceptedName, "klaviyo.relay.import_job.wait" })
        {
            Assert.Contains(needed, queried);
        }
    }

    [TestMethod]
    public void Workbook_ChartsTheServiceBusBacklogMetrics()
    {
        var bicep = Read(OperationsBicep);

        foreach (var metric in new[] { "ActiveMessages", "ScheduledMessages", "DeadletteredMessages" })
        {
            Assert.IsTrue(Regex.IsMatch(bicep, $@"metricChart\('[^']+', '[^']+', '{metric}'"), $"the workbook charts Service Bus {metric}");
        }
        Assert.Contains("resource workbook 'Microsoft.Insights/workbooks@", bicep);
        Assert.Contains("serializedData: string(workbookContent)", bicep);
    }

    [TestMethod]
    public void WorkbookAndAlerts_EachSwitchedByAParameterOfMainBicep()
    {
        var operations = Read(OperationsBicep);
        var main = Read("infra/main.bicep");
        var conditions = ConditionalResource().Matches(operations).ToDictionary(m => m.Groups["name"].Value, m => m.Groups["condition"].Value);

        Assert.AreEqual("deployWorkbook", conditions.GetValueOrDefault("workbook"));
        Assert.AreEqual("alertOnDeadLetters", conditions.GetValueOrDefault("deadLetterAlert"));
        Assert.AreEqual("alertOnBacklogGrowing", conditions.GetValueOrDefault("backlogAlert"));
        Assert.AreEqual("alertOnKlaviyoUnauthorized", conditions.GetValueOrDefault("unauthorizedAlert"));
        foreach (var name in Switches)
        {
            Assert.IsTrue(Regex.IsMatch(main, $@"^param {name} bool = true$", RegexOptions.Multiline), $"main.bicep: param {name} bool = true");
            Assert.IsTrue(Regex.IsMatch(main, $@"^\s+{name}: {name}$", RegexOptions.Multiline), $"main.bicep passes {name} to the operations module");
            Assert.IsTrue(Regex.IsMatch(operations, $@"^param {name} bool", RegexOptions.Multiline), $"operations.bicep: param {name}");
        }
    }

    [TestMethod]
    public void Alerts_DeadLettersBacklogGrowingFor15MinutesAndKlaviyo401Or403()
    {
        var bicep = Read(OperationsBicep);

        Assert.HasCount(3, Regex.Matches(bicep, @"'Microsoft\.Insights/scheduledQueryRules@"));
        Assert.Contains("| where name == 'klaviyo.relay.dead_lettered'\n| summarize DeadLettered = sum(valueSum) by Reason", bicep.ReplaceLineEndings("\n"));
        Assert.Contains("in ('401', '403')", bicep);
        // Growing: every 5-minute step of a 20-minute window rose, at least three steps (15 minutes).
        Assert.Contains("summarize Backlog = max(Maximum) by bin(TimeGenerated, 5m)", bicep);
        Assert.Contains("where Steps >= 3 and Rising == Steps", bicep);
        Assert.Contains("windowSize: 'PT20M'", bicep);
        Assert.Contains("category: 'AllMetrics'", bicep);
    }

    /// <summary>The instruments the relay's meters create (RelayMetrics, IngestMetrics), by name.</summary>
    private static HashSet<string> InstrumentNames()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = services.GetRequiredService<IMeterFactory>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    lock (names)
                    {
                        names.Add(instrument.Name);
                    }
                }
            },
        };
        listener.Start();
        _ = new RelayMetrics(factory);
        _ = new IngestMetrics(factory);
        return names;
    }

    private static string Read(string path) => File.ReadAllText(Path.Combine(AppSettingsCoverageTests.RepoRoot(), path));

    [GeneratedRegex(@"klaviyo\.relay\.[a-z_.]+[a-z_]")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"^resource (?<name>\w+) '[^']+' = if \((?<condition>\w+)\)", RegexOptions.Multiline)]
    private static partial Regex ConditionalResource();
}
