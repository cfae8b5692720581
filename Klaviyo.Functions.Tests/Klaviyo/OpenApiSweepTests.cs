using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.Conformance;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Klaviyo;

/// <summary>Every body the real transform produces for the benchmark mix and the reference vectors matches Klaviyo's OpenAPI schema.</summary>
[TestClass]
public sealed class OpenApiSweepTests
{
    private static KlaviyoOptions MixOptions() => new()
    {
        PrivateApiKey = "pk_test",
        ListId = "LIST1",
        SendPageAsTrack = true,
        AdditionalPageInfo = true,
    };

    [TestMethod]
    public void Transform_EventMix_EveryEventPlannedOrSkippedAndEveryBodyMatchesItsSchema()
    {
        var transformer = new KlaviyoTransformer(MixOptions());
        var path = Path.Combine(KlaviyoSchemas.SharedDirectory, "bench", "event-mix.jsonl");
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        var bodies = new Dictionary<KlaviyoEndpoint, int>();
        var refused = new List<string>();
        var invalidBodies = new List<string>();
        var line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (text.Length == 0)
            {
                continue;
            }
            var result = transformer.Transform(Encoding.UTF8.GetBytes(text));
            outcomes[result.GetType().Name] = outcomes.GetValueOrDefault(result.GetType().Name) + 1;
            switch (result)
            {
                case TransformResult.Planned planned:
                    Check(planned.Plan, $"line {line}", bodies, invalidBodies);
                    break;
                case TransformResult.Invalid or TransformResult.Malformed:
                    refused.Add($"line {line}: {result}");
                    break;
            }
        }

        var summary = $"openapi sweep (event mix): {line} events, {Describe(outcomes)}; bodies {Describe(bodies)}; {invalidBodies.Count} invalid";
        Console.WriteLine(summary);
        Assert.IsEmpty(refused, $"{summary}\nthe mix is well-formed, yet:\n" + string.Join("\n", refused.Take(20)));
        Assert.IsEmpty(invalidBodies, $"{summary}\n" + string.Join("\n", invalidBodies.Take(10)));
        Assert.IsGreaterThan(0, bodies.GetValueOrDefault(KlaviyoEndpoint.CreateEvent), summary);
        Assert.IsGreaterThan(0, bodies.GetValueOrDefault(KlaviyoEndpoint.ProfileImport), summary);
    }

    [TestMethod]
    public void Transform_EveryReferenceVectorInput_EveryPlannedBodyMatchesItsSchema()
    {
        var files = Directory.GetFiles(RudderVectors.Directory, "*.json").Where(f => !f.EndsWith("_index.json", StringComparison.Ordinal));
        var bodies = new Dictionary<KlaviyoEndpoint, int>();
        var invalidBodies = new List<string>();
        var inputs = 0;
        foreach (var file in files.Order(StringComparer.Ordinal))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            foreach (var vector in doc.RootElement.EnumerateArray())
            {
                var events = vector.TryGetProperty("events", out var routed)
                    ? routed.EnumerateArray().Select(e => (Event: e.GetProperty("message"), Settings: e.TryGetProperty("settings", out var s) ? s : vector.GetProperty("settings"))).ToList()
                    : [(vector.GetProperty("event"), vector.GetProperty("settings"))];
                foreach (var (message, settings) in events)
                {
                    inputs++;
                    var mapped = RudderVectors.MapSettings(settings);
                    var options = mapped.Failures.Count == 0 ? mapped.Options : MixOptions();
                    if (new KlaviyoTransformer(options).Transform(message) is TransformResult.Planned planned)
                    {
                        Check(planned.Plan, $"{Path.GetFileName(file)} {vector.GetProperty("name")}", bodies, invalidBodies);
                    }
                }
            }
        }

        var summary = $"openapi sweep (vectors): {inputs} inputs; bodies {Describe(bodies)}; {invalidBodies.Count} invalid";
        Console.WriteLine(summary);
        Assert.IsEmpty(invalidBodies, $"{summary}\n" + string.Join("\n", invalidBodies.Take(10)));
        Assert.IsGreaterThan(0, bodies.Values.Sum(), summary);
    }

    private static void Check(RequestPlan plan, string where, Dictionary<KlaviyoEndpoint, int> bodies, List<string> invalid)
    {
        foreach (var step in plan.Steps)
        {
            var request = step.Build(SemanticView.ProfileIdPlaceholder);
            Assert.AreEqual(step.Endpoint, request.Endpoint, $"{where}: step and request disagree on the endpoint");
            bodies[request.Endpoint] = bodies.GetValueOrDefault(request.Endpoint) + 1;
            var errors = KlaviyoSchemas.Validate(request.Endpoint, request.Body);
            if (errors.Count > 0)
            {
                invalid.Add($"{where}: {request} vs {KlaviyoApi.SchemaName(request.Endpoint)}: {string.Join("; ", errors.Take(3))}\n  {Encoding.UTF8.GetString(request.Body.Span)}");
            }
        }
    }

    private static string Describe<TKey>(Dictionary<TKey, int> counts) where TKey : notnull =>
        string.Join(", ", counts.OrderBy(c => c.Key.ToString(), StringComparer.Ordinal).Select(c => $"{c.Key} {c.Value}"));
}
