using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Conformance;

/// <summary>
/// Runs the RudderStack reference vectors (v2/v3) through the relay's transform and compares the semantic core
/// (issue 2 "Show"). Every mismatch is either a deliberate difference backed by a spec section or a failure.
/// </summary>
[TestClass]
public sealed class RudderVectorConformanceTests
{
    [TestMethod]
    public void Vectors_V2AndV3_MatchTheReferenceOrDifferDeliberately()
    {
        var cases = RudderVectors.LoadProcessorCases().Concat(RudderVectors.LoadRouterEvents()).ToList();
        Assert.IsGreaterThanOrEqualTo(50, cases.Count, "the v2/v3 vectors did not load");

        var passed = 0;
        var deliberate = 0;
        var failures = new List<string>();
        var log = new StringBuilder();
        foreach (var (id, description, section) in DeliberateDifferences.Global)
        {
            log.AppendLine($"  all cases: deliberate difference {id} ({section}): {description}");
        }
        foreach (var vector in cases)
        {
            var verdict = Judge(vector);
            log.AppendLine($"  {vector.CaseId}: {verdict.Summary}");
            switch (verdict.Kind)
            {
                case VerdictKind.Passed: passed++; break;
                case VerdictKind.Deliberate: deliberate++; break;
                default: failures.Add($"{vector.CaseId} ({vector.File}): {verdict.Summary}"); break;
            }
        }

        var closing = $"conformance: {passed} passed, {deliberate} deliberate differences, {failures.Count} failed";
        Console.WriteLine(log.ToString());
        Console.WriteLine(closing);
        Assert.IsEmpty(failures, closing + "\n" + string.Join("\n", failures));
    }

    /// <summary>The harness must be able to fail: a relay that answered differently would be caught.</summary>
    [TestMethod]
    public void Compare_DifferentMetricAndListId_ReportsEachField()
    {
        using var reference = JsonDocument.Parse("""
            {"data":{"type":"event","attributes":{"metric":{"data":{"type":"metric","attributes":{"name":"Order Completed"}}},
             "profile":{"data":{"type":"profile","attributes":{"email":"a@b.co","properties":{"plan":"pro"}}}},
             "properties":{"total":3000.0},"value":12,"unique_id":"m1"}}}
            """);
        using var relay = JsonDocument.Parse("""
            {"data":{"type":"event","attributes":{"metric":{"data":{"type":"metric","attributes":{"name":"Order Complete"}}},
             "profile":{"data":{"type":"profile","attributes":{"email":"a@b.co","properties":{"plan":"free"}}}},
             "properties":{"total":3000},"value":12.0,"unique_id":"m1"}}}
            """);

        var mismatches = SemanticView.Compare(
            SemanticView.FromRequests([("/api/events", reference.RootElement)], id => id),
            SemanticView.FromRequests([("/api/events", relay.RootElement)], id => id));

        Assert.HasCount(2, mismatches, string.Join("\n", mismatches));
        Assert.AreEqual("event.metric", mismatches[0].Field);
        Assert.AreEqual("event.profile.properties.plan", mismatches[1].Field);
    }

    [TestMethod]
    public void MapSettings_ReferenceConfig_BecomesRelayOptions()
    {
        using var config = JsonDocument.Parse("""
            {"apiVersion":"v3","privateApiKey":"klaviyo1","listId":"XUepkK","consent":["email","sms"],"enforceEmailAsPrimary":true,"flattenProperties":true}
            """);

        var mapped = RudderVectors.MapSettings(config.RootElement);

        Assert.IsEmpty(mapped.Failures);
        Assert.AreEqual("klaviyo1", mapped.Options.PrivateApiKey);
        Assert.AreEqual("XUepkK", mapped.Options.ListId);
        Assert.AreEqual(global::Klaviyo.Functions.Klaviyo.ConsentChannels.Email | global::Klaviyo.Functions.Klaviyo.ConsentChannels.Sms, mapped.Options.ConsentChannels);
        Assert.IsTrue(mapped.Options.EnforceEmailAsPrimary);
        Assert.IsTrue(mapped.Options.FlattenProperties);
    }

    /// <summary>
    /// The relay takes list ids of letters and digits only (they go into a URL path); the reference vectors use ids such
    /// as <c>group_list_id</c>. Those are adapted (non-alphanumerics dropped) on both sides so the rest can be compared.
    /// </summary>
    private static JsonElement AdaptEventListIds(JsonElement @event, out bool adapted)
    {
        adapted = false;
        var node = JsonNode.Parse(@event.GetRawText());
        if (node is not JsonObject root)
        {
            return @event;
        }
        JsonNode?[] holders = [root, root["traits"]?["properties"], (root["context"] as JsonObject)?["traits"]?["properties"], root["properties"]];
        foreach (var (holder, key) in holders.Zip(new[] { "groupId", "listId", "listId", "listId" }))
        {
            if (holder is JsonObject obj && obj[key] is JsonValue v && v.TryGetValue(out string? id) && RudderVectors.AdaptListId(id) != id)
            {
                obj[key] = RudderVectors.AdaptListId(id);
                adapted = true;
            }
        }
        return adapted ? JsonDocument.Parse(root.ToJsonString()).RootElement.Clone() : @event;
    }

    /// <summary>Every body the relay would send must match Klaviyo's OpenAPI schema (spec §2); never a deliberate difference.</summary>
    private static string? SchemaErrors(RequestPlan plan)
    {
        foreach (var step in plan.Steps)
        {
            var request = step.Build(SemanticView.ProfileIdPlaceholder);
            var errors = KlaviyoSchemas.Validate(request.Endpoint, request.Body);
            if (errors.Count > 0)
            {
                var schema = global::Klaviyo.Functions.Klaviyo.KlaviyoApi.SchemaName(request.Endpoint);
                return $"{request} does not match {schema}: {string.Join("; ", errors)}";
            }
        }
        return null;
    }

    private enum VerdictKind { Passed, Deliberate, Failed }

    private sealed record Verdict(VerdictKind Kind, string Summary);

    private static Verdict Judge(RudderVector vector)
    {
        var settings = RudderVectors.MapSettings(vector.Settings);
        if (settings.Failures.Count > 0)
        {
            // The relay refuses these settings at start-up; the reference refuses the event for the same reason.
            return vector.ExpectedErrorType == "configuration"
                ? new Verdict(VerdictKind.Passed, "both refuse the settings (" + string.Join("; ", settings.Failures) + ")")
                : new Verdict(VerdictKind.Failed, "first mismatch settings: " + string.Join("; ", settings.Failures));
        }

        var @event = AdaptEventListIds(vector.Event, out var eventListIdsAdapted);
        TransformResult result;
        try
        {
            result = new KlaviyoTransformer(settings.Options).Transform(@event);
        }
        catch (Exception ex) when (ex is not NotImplementedException)
        {
            return new Verdict(VerdictKind.Failed, $"first mismatch outcome: the transform threw {ex.GetType().Name}: {ex.Message}");
        }

        if (result is TransformResult.Planned planned && SchemaErrors(planned.Plan) is { } schemaError)
        {
            return new Verdict(VerdictKind.Failed, "schema: " + schemaError);
        }

        var expected = vector.ExpectsError
            ? SemanticView.FromOutcome("refused")
            : SemanticView.FromRequests(vector.ExpectedRequests!.Select(r => (r.EndpointPath, r.Body)), RudderVectors.AdaptListId);
        var actual = result switch
        {
            TransformResult.Planned p => SemanticView.FromPlan(p.Plan),
            TransformResult.Invalid => SemanticView.FromOutcome("refused"),
            TransformResult.Skipped => SemanticView.FromOutcome("skipped"),
            TransformResult.Malformed => SemanticView.FromOutcome("malformed"),
            _ => throw new InvalidOperationException(result.GetType().Name),
        };
        var detail = result switch
        {
            TransformResult.Invalid i => $" (relay: {i.Message}; reference: {vector.ExpectedError ?? "success"})",
            TransformResult.Skipped s => $" (relay skipped: {s.Reason}; reference: {vector.ExpectedError ?? "success"})",
            TransformResult.Malformed m => $" (relay malformed: {m.Reason})",
            _ => vector.ExpectsError ? $" (reference: {vector.ExpectedError})" : "",
        };

        var mismatches = SemanticView.Compare(expected, actual);
        if (mismatches.Count > 0 && mismatches[0].Field == SemanticView.Outcome)
        {
            mismatches = [mismatches[0]]; // everything else follows from the outcome
        }
        var context = new ConformanceCase(vector, settings, result);
        var named = new SortedSet<string>(StringComparer.Ordinal);
        if (settings.ListIdAdaptedFrom is not null || eventListIdsAdapted)
        {
            named.Add($"{DeliberateDifferences.ListIdLettersAndDigits.Id} ({DeliberateDifferences.ListIdLettersAndDigits.SpecSection})");
        }
        var unexplained = new List<Mismatch>();
        foreach (var mismatch in mismatches)
        {
            var difference = DeliberateDifferences.Explain(context, mismatch);
            if (difference is null)
            {
                unexplained.Add(mismatch);
                continue;
            }
            named.Add($"{difference.Id} ({difference.SpecSection})");
        }
        if (unexplained.Count > 0)
        {
            var more = unexplained.Count > 1 ? $"; {unexplained.Count - 1} more: " + string.Join("; ", unexplained.Skip(1)) : "";
            return new Verdict(VerdictKind.Failed, $"first mismatch {unexplained[0]}{detail}{more}");
        }
        if (named.Count == 0)
        {
            return new Verdict(VerdictKind.Passed, "passed" + (vector.ExpectsError ? " (both refuse)" : ""));
        }
        return new Verdict(VerdictKind.Deliberate, "deliberate differences: " + string.Join(", ", named) + detail);
    }
}
