using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Schema;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Settings;

namespace Klaviyo.Functions.Tests.Infra;

/// <summary>
/// host.json against SchemaStore's host.json schema (kept beside this file as test data, from
/// ../shared/reference/host-json.schema.json), and its Service Bus timings against the queue's lock.
/// </summary>
[TestClass]
public sealed partial class HostJsonTests
{
    // An identify makes up to three Klaviyo calls in a row (profile import, subscription, list).
    private const int MostCallsPerEvent = 3;

    private static readonly Lazy<JsonSchema> Schema = new(() =>
        JsonSchema.FromFile(Path.Combine(RepoRoot(), "Klaviyo.Functions.Tests", "Infra", "host-json.schema.json")));

    private static readonly object SchemaLock = new();

    [TestMethod]
    public void HostJson_MatchesTheSchemaStoreSchema()
    {
        var errors = Validate(HostJson());

        Assert.IsEmpty(errors, "host.json breaks the host.json schema:\n" + string.Join("\n", errors));
    }

    [TestMethod]
    public void Schema_ClientRetryModeInPascalCase_IsRejected()
    {
        // Guards the validation itself: the value host.json used to have must fail.
        var hostJson = HostJson();
        hostJson["extensions"]!["serviceBus"]!["clientRetryOptions"]!["mode"] = "Exponential";

        Assert.IsNotEmpty(Validate(hostJson));
    }

    [TestMethod]
    public void HostJson_ServiceBus_SettlesItselfWithoutPrefetch()
    {
        var serviceBus = HostJson()["extensions"]!["serviceBus"]!;

        Assert.IsFalse((bool)serviceBus["autoCompleteMessages"]!);
        Assert.AreEqual(0, (int)serviceBus["prefetchCount"]!);
        Assert.AreEqual("exponential", (string?)serviceBus["clientRetryOptions"]!["mode"]);
    }

    /// <summary>Issue 18 item 8: the relay bounds a batch within the lock by itself; the host's timeout is only a
    /// backstop, and in the isolated model a timeout restarts the worker, cutting every invocation in it (other batches,
    /// ingest requests) — it must never fire before the relay's own bounds. It used to equal the lock.</summary>
    [TestMethod]
    public void HostJson_FunctionTimeout_LeavesTheHostHeadRoomBeyondTheRelaysOwnBounds()
    {
        var hostJson = HostJson();
        var functionTimeout = TimeSpan.Parse((string)hostJson["functionTimeout"]!, System.Globalization.CultureInfo.InvariantCulture);
        var lockDuration = System.Xml.XmlConvert.ToTimeSpan(QueueLockDuration());
        // A batch's calls start only before the lock less the settlement allowance; settling, then giving back what
        // failed to settle, follow within their own bounds.
        var worstBatch = lockDuration - RelayOptions.SettlementAllowance + RelaySettler.SettlementTimeout + RelaySettler.GiveBackDelay + RelaySettler.GiveBackTimeout;

        Assert.IsLessThanOrEqualTo(lockDuration, worstBatch, $"the relay's own bound on a batch ({worstBatch}) fits in the lock");
        Assert.IsGreaterThanOrEqualTo(lockDuration + TimeSpan.FromMinutes(1), functionTimeout, "at least a minute of head room beyond the lock");
        Assert.IsGreaterThanOrEqualTo(global::Klaviyo.Functions.Ingest.IngestOptions.MaxSendTimeout + TimeSpan.FromMinutes(1), functionTimeout, "an ingest request waits for Service Bus up to Ingest__SendTimeout (at most 3 min)");
        Assert.AreEqual(RelayOptions.MessageLockDuration, lockDuration, "the relay's deadline counts on the queue's lock");
        Assert.IsNull(hostJson["extensions"]!["serviceBus"]!["maxAutoLockRenewalDuration"], "renewal applies to single-message triggers only: setting it would mislead");
    }

    [TestMethod]
    public void HostJson_BatchOptions_FullBatchesForBulkCallsAndNoWaitForALoneEvent()
    {
        var serviceBus = HostJson()["extensions"]!["serviceBus"]!;

        // One event bulk call carries at most 1,000 events, and one batch fills it.
        Assert.AreEqual(1000, (int)serviceBus["maxMessageBatchSize"]!);
        // A lone event is relayed at once (spec 8.1: within about a second); under load batches fill by themselves,
        // because an instance runs one batch at a time and the queue fills meanwhile.
        Assert.AreEqual(1, (int)serviceBus["minMessageBatchSize"]!);
        Assert.IsNull(serviceBus["maxBatchWaitTime"], "only used when minMessageBatchSize > 1");
        Assert.IsNull(serviceBus["maxConcurrentCalls"], "single-message dispatch only");
    }

    private static List<string> Validate(JsonNode hostJson)
    {
        EvaluationResults results;
        lock (SchemaLock)
        {
            results = Schema.Value.Evaluate(hostJson, new EvaluationOptions { OutputFormat = OutputFormat.List });
        }
        return results.IsValid
            ? []
            : [.. (results.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}"))];
    }

    private static JsonNode HostJson() => JsonNode.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "host.json")))!;

    private static string QueueLockDuration()
    {
        var bicep = File.ReadAllText(Path.Combine(RepoRoot(), "infra", "modules", "servicebus.bicep"));
        var match = LockDurationLine().Match(bicep);
        Assert.IsTrue(match.Success, "lockDuration not found in infra/modules/servicebus.bicep");
        return match.Groups[1].Value;
    }

    private static string RepoRoot() => BuildOutput.BuildOutputFiles.RepoRoot();

    [GeneratedRegex(@"lockDuration:\s*'([^']+)'")]
    private static partial Regex LockDurationLine();
}
