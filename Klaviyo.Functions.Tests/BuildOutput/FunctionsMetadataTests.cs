using System.Reflection;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Health;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Microsoft.Azure.Functions.Worker;

namespace Klaviyo.Functions.Tests.BuildOutput;

/// <summary>
/// <c>functions.metadata</c> from the real build output is what the Functions host indexes: if a binding there differs
/// from what the host expects (a wrong trigger type, a lost route, auto-complete left on while the code settles),
/// the deployed app misbehaves although every unit test passes. These pin every function's bindings.
/// </summary>
[TestClass]
public sealed class FunctionsMetadataTests
{
    /// <summary>The Relay trigger's cardinality: "Many", it takes batches (<c>IsBatched = true</c>, spec 8.1).</summary>
    public const string RelayTriggerCardinality = "Many";

    private sealed record HttpExpectation(string Function, string EntryPoint, string AuthLevel, string Method, string Route);

    private static readonly HttpExpectation[] HttpFunctions =
    [
        new(IngestFunction.EventsFunctionName, "Klaviyo.Functions.Ingest.IngestFunction.Events", "Function", "post", "events"),
        new(IngestFunction.BatchFunctionName, "Klaviyo.Functions.Ingest.IngestFunction.Batch", "Function", "post", "v1/batch"),
        new(IngestFunction.TypedFunctionName, "Klaviyo.Functions.Ingest.IngestFunction.Typed", "Function", "post", IngestFunction.TypedRoute),
        new(HealthFunction.Name, "Klaviyo.Functions.Health.HealthFunction.Run", "Anonymous", "get", "health"),
        new(ReplayDeadLettersFunction.Name, "Klaviyo.Functions.Relay.ReplayDeadLettersFunction.RunAsync", "Admin", "post", "dead-letters/replay"),
    ];

    public static IEnumerable<object[]> HttpFunctionNames() => HttpFunctions.Select(h => new object[] { h.Function });

    private static JsonObject Function(string name)
    {
        var matches = BuildOutputFiles.FunctionsMetadata().Select(f => f!.AsObject()).Where(f => (string?)f["name"] == name).ToList();
        Assert.HasCount(1, matches, $"functions.metadata should declare function '{name}' once");
        return matches[0];
    }

    [TestMethod]
    public void FunctionsMetadata_DeclaresExactlyTheAppsFunctions()
    {
        var names = BuildOutputFiles.FunctionsMetadata().Select(f => (string)f!["name"]!).Order(StringComparer.Ordinal).ToArray();
        var expected = HttpFunctions.Select(h => h.Function).Append(RelayFunction.Name).Order(StringComparer.Ordinal).ToArray();

        Assert.AreSequenceEqual(expected, names);
    }

    [TestMethod]
    public void FunctionsMetadata_EveryFunction_IsIsolatedAndItsEntryPointIsTheFunctionMethod()
    {
        foreach (var function in BuildOutputFiles.FunctionsMetadata().Select(f => f!.AsObject()))
        {
            var name = (string)function["name"]!;
            Assert.AreEqual("dotnet-isolated", (string?)function["language"], name);
            Assert.AreEqual("Klaviyo.Functions.dll", (string?)function["scriptFile"], name);

            var entryPoint = (string)function["entryPoint"]!;
            var typeName = entryPoint[..entryPoint.LastIndexOf('.')];
            var method = typeof(RelayFunction).Assembly.GetType(typeName, throwOnError: true)!.GetMethod(entryPoint[(typeName.Length + 1)..]);
            Assert.AreEqual(name, method?.GetCustomAttribute<FunctionAttribute>()?.Name, $"{entryPoint} should be [Function(\"{name}\")]");
        }
    }

    [TestMethod]
    public void FunctionsMetadata_Relay_IsAQueueTriggerThatTheCodeSettles()
    {
        var relay = Function(RelayFunction.Name);
        Assert.AreEqual("Klaviyo.Functions.Relay.RelayFunction.RunAsync", (string?)relay["entryPoint"]);

        var trigger = relay["bindings"]!.AsArray().Select(b => b!.AsObject()).Single(b => ((string?)b["type"])?.EndsWith("Trigger", StringComparison.Ordinal) == true);
        Assert.AreEqual("serviceBusTrigger", (string?)trigger["type"]);
        Assert.AreEqual("In", (string?)trigger["direction"]);
        Assert.AreEqual($"%{RelayFeatureServiceCollectionExtensions.QueueNameSetting}%", (string?)trigger["queueName"]);
        Assert.AreEqual(MessageProperties.ConnectionName, (string?)trigger["connection"]);
        // Explicitly false: left out, host.json's default (true) would complete messages the code already settled.
        Assert.IsNotNull(trigger["autoCompleteMessages"], "autoCompleteMessages must be set on the trigger, not left to host.json");
        Assert.IsFalse((bool)trigger["autoCompleteMessages"]!);
        Assert.AreEqual(RelayTriggerCardinality, (string?)trigger["cardinality"]);
        Assert.IsNull(trigger["topicName"]);
        Assert.IsFalse(trigger["isSessionsEnabled"] is JsonValue sessions && (bool)sessions, "the queue has no sessions");
        // No output bindings: retries and dead letters are settled through ServiceBusMessageActions and the sender.
        Assert.DoesNotContain("Out", relay["bindings"]!.AsArray().Select(b => (string?)b!["direction"]).ToList());
    }

    [TestMethod]
    [DynamicData(nameof(HttpFunctionNames))]
    public void FunctionsMetadata_HttpFunction_HasItsRouteMethodAndAuthLevel(string name)
    {
        var expected = HttpFunctions.Single(h => h.Function == name);
        var function = Function(name);
        var bindings = function["bindings"]!.AsArray().Select(b => b!.AsObject()).ToList();

        Assert.AreEqual(expected.EntryPoint, (string?)function["entryPoint"]);
        var trigger = bindings.Single(b => (string?)b["direction"] == "In");
        Assert.AreEqual("httpTrigger", (string?)trigger["type"]);
        Assert.AreEqual(expected.AuthLevel, (string?)trigger["authLevel"]);
        Assert.AreEqual(expected.Route, (string?)trigger["route"]);
        Assert.AreSequenceEqual(new[] { expected.Method }, trigger["methods"]!.AsArray().Select(m => (string)m!).ToArray());

        var output = bindings.Single(b => (string?)b["direction"] == "Out");
        Assert.AreEqual("http", (string?)output["type"]);
        Assert.AreEqual("$return", (string?)output["name"]);
    }
}
