using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// Klaviyo's OpenAPI document (<c>shared/klaviyo-openapi/stable.json</c>) as a JSON Schema oracle for request bodies.
/// OpenAPI 3.0 is not JSON Schema, so the document is converted once (klaviyo-api-facts §7): components.schemas
/// become <c>$defs</c> of a 2020-12 document, refs are rewritten, and <c>nullable: true</c> becomes an explicit
/// null alternative (otherwise legal bodies such as <c>"time": null</c> are rejected).
/// </summary>
internal static class KlaviyoSchemas
{
    public const string ProfileUpsertQuery = "ProfileUpsertQuery";
    public const string EventCreateQueryV2 = "EventCreateQueryV2";
    public const string SubscriptionCreateJobCreateQuery = "SubscriptionCreateJobCreateQuery";
    public const string ListMembersAddQuery = "ListMembersAddQuery";
    public const string EventsBulkCreateJob = "EventsBulkCreateJob";
    public const string ProfileImportJobCreateQuery = "ProfileImportJobCreateQuery";

    private const string DocumentId = "https://openapi.klaviyo.test/stable.json";
    private const string Draft202012 = "https://json-schema.org/draft/2020-12/schema";

    private static readonly Lazy<Catalog> s_catalog = new(Catalog.Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The <c>shared/</c> folder: the first ancestor of the test assembly directory that holds the OpenAPI document.</summary>
    public static string SharedDirectory { get; } = FindSharedDirectory();

    /// <summary>Validates a request body against the schema of <paramref name="endpoint"/>; empty when valid.</summary>
    public static IReadOnlyList<string> Validate(KlaviyoEndpoint endpoint, ReadOnlyMemory<byte> body) =>
        Validate(KlaviyoApi.SchemaName(endpoint), body);

    /// <summary>Validates a body against a component schema by name; empty when valid.</summary>
    public static IReadOnlyList<string> Validate(string schemaName, ReadOnlyMemory<byte> body)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(body.Span);
        }
        catch (JsonException ex)
        {
            return [$"body is not JSON: {ex.Message}"];
        }
        return s_catalog.Value.Evaluate(schemaName, node);
    }

    /// <summary>Fails the test with every schema error of the request's body.</summary>
    public static void AssertValid(KlaviyoRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = Validate(request.Endpoint, request.Body);
        if (errors.Count > 0)
        {
            Assert.Fail($"{request} does not match {KlaviyoApi.SchemaName(request.Endpoint)}:\n  "
                + string.Join("\n  ", errors) + "\nbody: " + Encoding.UTF8.GetString(request.Body.Span));
        }
    }

    private static string FindSharedDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared");
            if (File.Exists(Path.Combine(candidate, "klaviyo-openapi", "stable.json")))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException(
            $"No ancestor of {AppContext.BaseDirectory} holds shared/klaviyo-openapi/stable.json.");
    }

    private sealed class Catalog
    {
        private readonly EvaluationOptions _options;
        private readonly ConcurrentDictionary<string, Lazy<JsonSchema>> _roots = new(StringComparer.Ordinal);
        private readonly HashSet<string> _names;

        // JsonSchema.Net 7 builds its constraint tree lazily on the first evaluation and caches it on the schema;
        // method-level parallel tests must not race that, so evaluations of one root are serialised.
        private readonly ConcurrentDictionary<string, object> _locks = new(StringComparer.Ordinal);

        private Catalog(JsonSchema document, HashSet<string> names)
        {
            _names = names;
            _options = new EvaluationOptions
            {
                OutputFormat = OutputFormat.List,
                RequireFormatValidation = true,
            };
            _options.SchemaRegistry.Register(new Uri(DocumentId), document);
        }

        public static Catalog Load()
        {
            var path = Path.Combine(SharedDirectory, "klaviyo-openapi", "stable.json");
            var openApi = JsonNode.Parse(File.ReadAllBytes(path))!.AsObject();
            var schemas = openApi["components"]!["schemas"]!.AsObject();
            var defs = new JsonObject();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, schema) in schemas)
            {
                names.Add(name);
                defs[name] = Convert(schema!.DeepClone());
            }
            var root = new JsonObject
            {
                ["$schema"] = Draft202012,
                ["$id"] = DocumentId,
                ["$defs"] = defs,
            };
            return new Catalog(JsonSchema.FromText(root.ToJsonString()), names);
        }

        public IReadOnlyList<string> Evaluate(string schemaName, JsonNode? instance)
        {
            if (!_names.Contains(schemaName))
            {
                throw new ArgumentException($"The OpenAPI document has no component schema {schemaName}.", nameof(schemaName));
            }
            var schema = _roots.GetOrAdd(schemaName, n => new Lazy<JsonSchema>(() => JsonSchema.FromText(
                $$"""{"$schema":"{{Draft202012}}","$id":"https://openapi.klaviyo.test/roots/{{n}}","$ref":"{{DocumentId}}#/$defs/{{n}}"}"""))).Value;
            EvaluationResults results;
            lock (_locks.GetOrAdd(schemaName, _ => new object()))
            {
                results = schema.Evaluate(instance, _options);
            }
            if (results.IsValid)
            {
                return [];
            }
            var errors = new List<string>();
            foreach (var detail in results.Details ?? [])
            {
                if (detail.Errors is null)
                {
                    continue;
                }
                foreach (var (keyword, message) in detail.Errors)
                {
                    errors.Add($"{Display(detail.InstanceLocation.ToString())}: {message} ({keyword} at {detail.EvaluationPath})");
                }
            }
            if (errors.Count == 0)
            {
                errors.Add("does not match the schema");
            }
            return errors;
        }

        private static string Display(string pointer) => pointer.Length == 0 ? "(body)" : pointer;

        /// <summary>Rewrites one OpenAPI schema node into 2020-12 JSON Schema, in place.</summary>
        private static JsonNode? Convert(JsonNode? node)
        {
            switch (node)
            {
                case JsonArray array:
                    for (var i = 0; i < array.Count; i++)
                    {
                        var converted = Convert(array[i]);
                        if (!ReferenceEquals(converted, array[i]))
                        {
                            array[i] = converted;
                        }
                    }
                    return array;
                case JsonObject obj:
                    foreach (var key in obj.Select(p => p.Key).ToList())
                    {
                        var child = obj[key];
                        if (key == "$ref" && child is JsonValue refValue && refValue.TryGetValue(out string? target)
                            && target.StartsWith("#/components/schemas/", StringComparison.Ordinal))
                        {
                            obj[key] = string.Concat("#/$defs/", target.AsSpan("#/components/schemas/".Length));
                        }
                        else if (key is "example" or "examples" || child is not (JsonObject or JsonArray))
                        {
                            continue;
                        }
                        else if (key == "properties" && child is JsonObject props)
                        {
                            foreach (var name in props.Select(p => p.Key).ToList())
                            {
                                var converted = Convert(props[name]);
                                if (!ReferenceEquals(converted, props[name]))
                                {
                                    props[name] = converted;
                                }
                            }
                        }
                        else
                        {
                            var converted = Convert(child);
                            if (!ReferenceEquals(converted, child))
                            {
                                obj[key] = converted;
                            }
                        }
                    }
                    return TranslateNullable(obj);
                default:
                    return node;
            }
        }

        private static JsonObject TranslateNullable(JsonObject obj)
        {
            if (!obj.TryGetPropertyValue("nullable", out var flag))
            {
                return obj;
            }
            obj.Remove("nullable");
            if (flag is not JsonValue v || !v.TryGetValue(out bool nullable) || !nullable)
            {
                return obj;
            }
            if (obj["type"] is JsonValue typeValue && typeValue.TryGetValue(out string? type))
            {
                obj["type"] = new JsonArray(type, "null");
                if (obj["enum"] is JsonArray values && !values.Any(e => e is null))
                {
                    values.Add(null);
                }
                return obj;
            }
            if (obj.ContainsKey("$ref") || obj.ContainsKey("oneOf") || obj.ContainsKey("anyOf") || obj.ContainsKey("allOf"))
            {
                var inner = new JsonObject();
                foreach (var key in obj.Select(p => p.Key).ToList())
                {
                    if (key is not ("description" or "example" or "title" or "readOnly" or "writeOnly" or "default"))
                    {
                        var value = obj[key];
                        obj.Remove(key);
                        inner[key] = value;
                    }
                }
                obj["anyOf"] = new JsonArray(inner, new JsonObject { ["type"] = "null" });
            }
            return obj;
        }
    }
}
