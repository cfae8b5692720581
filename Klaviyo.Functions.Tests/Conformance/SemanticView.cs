using System.Globalization;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Conformance;

/// <summary>A field of the semantic core on which the reference and the relay disagree. A null side is "absent".</summary>
internal sealed record Mismatch(string Field, string? Expected, string? Actual)
{
    public override string ToString() => $"{Field}: expected {Expected ?? "(absent)"}, actual {Actual ?? "(absent)"}";
}

/// <summary>
/// The semantic core of a list of Klaviyo requests as flat, comparable fields (issue 2 "Show"): which endpoints,
/// metric name, profile identifiers, attributes and properties, event properties, value, unique_id, list id and
/// consent channels. Request shape details (meta, time, headers, JSON:API type strings) are not part of it; the
/// OpenAPI tests cover the shape. Field names: <c>endpoint.&lt;kind&gt;</c> (count), then per kind
/// <c>import.*</c>, <c>event.*</c>, <c>event.profile.*</c>, <c>subscribe.*</c>, <c>unsubscribe.*</c>, <c>list-add.*</c>.
/// </summary>
internal static class SemanticView
{
    public const string Outcome = "outcome";
    public const string ProfileIdPlaceholder = "01HPROFILEID0000000000000";

    private static readonly string[] ProfileScalars =
        ["id", "email", "phone_number", "external_id", "anonymous_id", "_kx", "first_name", "last_name", "organization", "title", "image", "locale"];

    public static string Kind(string endpointPath) => endpointPath switch
    {
        KlaviyoApi.ProfileImportPath => "import",
        KlaviyoApi.CreateEventPath => "event",
        KlaviyoApi.SubscribeProfilesPath => "subscribe",
        "/api/profile-subscription-bulk-delete-jobs" => "unsubscribe",
        _ when endpointPath.StartsWith("/api/lists/", StringComparison.Ordinal) && endpointPath.EndsWith("/relationships/profiles", StringComparison.Ordinal) => "list-add",
        _ => "other:" + endpointPath,
    };

    /// <summary>The reference's requests. List ids pass through <paramref name="adaptListId"/> (see <see cref="RudderVectors.MapSettings"/>).</summary>
    public static SortedDictionary<string, string> FromRequests(IEnumerable<(string Path, JsonElement Body)> requests, Func<string, string> adaptListId)
    {
        var fields = new SortedDictionary<string, string>(StringComparer.Ordinal) { [Outcome] = "planned" };
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (path, body) in requests)
        {
            var kind = Kind(path);
            counts[kind] = counts.GetValueOrDefault(kind) + 1;
            var prefix = counts[kind] == 1 ? kind : $"{kind}#{counts[kind]}";
            var data = body.ValueKind == JsonValueKind.Object && body.TryGetProperty("data", out var d) ? d : default;
            switch (kind)
            {
                case "import":
                    AddProfile(fields, prefix, data);
                    break;
                case "event":
                    AddEvent(fields, prefix, Get(data, "attributes"));
                    break;
                case "subscribe" or "unsubscribe":
                    AddSubscription(fields, prefix, data, adaptListId);
                    break;
                case "list-add":
                    fields[$"{prefix}.list"] = adaptListId(path.Split('/')[3]);
                    fields[$"{prefix}.profiles"] = data.ValueKind == JsonValueKind.Array ? data.GetArrayLength().ToString(CultureInfo.InvariantCulture) : "?";
                    break;
                default:
                    fields[$"{prefix}.body"] = Canonical(body);
                    break;
            }
        }
        foreach (var (kind, count) in counts)
        {
            fields[$"endpoint.{kind}"] = count.ToString(CultureInfo.InvariantCulture);
        }
        return fields;
    }

    /// <summary>The relay's plan, every step built (steps that need a profile id get <see cref="ProfileIdPlaceholder"/>).</summary>
    public static SortedDictionary<string, string> FromPlan(RequestPlan plan) =>
        FromRequests(plan.Steps.Select(s => s.Build(ProfileIdPlaceholder)).Select(r => (r.Path, Parse(r))), id => id);

    public static SortedDictionary<string, string> FromOutcome(string outcome) =>
        new(StringComparer.Ordinal) { [Outcome] = outcome };

    public static List<Mismatch> Compare(SortedDictionary<string, string> expected, SortedDictionary<string, string> actual)
    {
        var mismatches = new List<Mismatch>();
        foreach (var key in expected.Keys.Union(actual.Keys).Order(StringComparer.Ordinal))
        {
            expected.TryGetValue(key, out var e);
            actual.TryGetValue(key, out var a);
            if (!string.Equals(e, a, StringComparison.Ordinal))
            {
                mismatches.Add(new Mismatch(key, e, a));
            }
        }
        // The outcome decides everything else; put it first so "first mismatching field" is the meaningful one.
        return mismatches.OrderBy(m => m.Field == Outcome ? 0 : m.Field.StartsWith("endpoint.", StringComparison.Ordinal) ? 1 : 2).ToList();
    }

    private static JsonElement Parse(KlaviyoRequest request)
    {
        using var doc = JsonDocument.Parse(request.Body);
        return doc.RootElement.Clone();
    }

    private static void AddProfile(SortedDictionary<string, string> fields, string prefix, JsonElement data)
    {
        if (data.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        if (Get(data, "id") is { ValueKind: JsonValueKind.String } id)
        {
            fields[$"{prefix}.id"] = id.GetString()!;
        }
        var attributes = Get(data, "attributes");
        if (attributes.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        foreach (var name in ProfileScalars)
        {
            if (name != "id" && Get(attributes, name) is var v && v.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
            {
                fields[$"{prefix}.{name}"] = Scalar(v);
            }
        }
        AddMembers(fields, $"{prefix}.location", Get(attributes, "location"));
        AddMembers(fields, $"{prefix}.properties", Get(attributes, "properties"));
    }

    private static void AddEvent(SortedDictionary<string, string> fields, string prefix, JsonElement attributes)
    {
        if (attributes.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        var name = Get(Get(Get(Get(attributes, "metric"), "data"), "attributes"), "name");
        if (name.ValueKind != JsonValueKind.Undefined)
        {
            fields[$"{prefix}.metric"] = Scalar(name);
        }
        foreach (var scalar in new[] { "value", "value_currency", "unique_id" })
        {
            if (Get(attributes, scalar) is var v && v.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
            {
                fields[$"{prefix}.{scalar}"] = Scalar(v);
            }
        }
        AddMembers(fields, $"{prefix}.properties", Get(attributes, "properties"));
        AddProfile(fields, $"{prefix}.profile", Get(Get(attributes, "profile"), "data"));
    }

    private static void AddSubscription(SortedDictionary<string, string> fields, string prefix, JsonElement data, Func<string, string> adaptListId)
    {
        var list = Get(Get(Get(Get(data, "relationships"), "list"), "data"), "id");
        if (list.ValueKind == JsonValueKind.String)
        {
            fields[$"{prefix}.list"] = adaptListId(list.GetString()!);
        }
        var profiles = Get(Get(Get(data, "attributes"), "profiles"), "data");
        if (profiles.ValueKind != JsonValueKind.Array)
        {
            return;
        }
        fields[$"{prefix}.profiles"] = profiles.GetArrayLength().ToString(CultureInfo.InvariantCulture);
        var i = 0;
        foreach (var profile in profiles.EnumerateArray())
        {
            var p = i++ == 0 ? prefix : $"{prefix}[{i - 1}]";
            var attributes = Get(profile, "attributes");
            foreach (var name in new[] { "email", "phone_number" })
            {
                if (Get(attributes, name) is { ValueKind: JsonValueKind.String } v)
                {
                    fields[$"{p}.{name}"] = v.GetString()!;
                }
            }
            var subscriptions = Get(attributes, "subscriptions");
            if (subscriptions.ValueKind == JsonValueKind.Object)
            {
                var channels = new List<string>();
                foreach (var channel in subscriptions.EnumerateObject())
                {
                    if (channel.Value.ValueKind != JsonValueKind.Object)
                    {
                        continue;
                    }
                    foreach (var purpose in channel.Value.EnumerateObject())
                    {
                        channels.Add($"{channel.Name}.{purpose.Name}={Scalar(Get(purpose.Value, "consent"))}");
                    }
                }
                channels.Sort(StringComparer.Ordinal);
                fields[$"{p}.channels"] = string.Join(",", channels);
            }
        }
    }

    private static void AddMembers(SortedDictionary<string, string> fields, string prefix, JsonElement obj)
    {
        if (obj.ValueKind != JsonValueKind.Object)
        {
            return;
        }
        foreach (var member in obj.EnumerateObject())
        {
            if (member.Value.ValueKind != JsonValueKind.Null)
            {
                fields[$"{prefix}.{member.Name}"] = Canonical(member.Value);
            }
        }
    }

    private static JsonElement Get(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var v) ? v : default;

    private static string Scalar(JsonElement v) => v.ValueKind == JsonValueKind.String ? v.GetString()! : Canonical(v);

    /// <summary>Order-insensitive for object keys, value-based for numbers (3000 and 3000.0 are the same value).</summary>
    public static string Canonical(JsonElement v)
    {
        var sb = new StringBuilder();
        Write(sb, v);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, JsonElement v)
    {
        switch (v.ValueKind)
        {
            case JsonValueKind.Object:
                sb.Append('{');
                var first = true;
                foreach (var p in v.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    sb.Append(first ? "" : ",").Append(JsonSerializer.Serialize(p.Name)).Append(':');
                    Write(sb, p.Value);
                    first = false;
                }
                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                var i = 0;
                foreach (var item in v.EnumerateArray())
                {
                    sb.Append(i++ == 0 ? "" : ",");
                    Write(sb, item);
                }
                sb.Append(']');
                break;
            case JsonValueKind.Number:
                sb.Append(v.TryGetDecimal(out var d) ? d.ToString("G29", CultureInfo.InvariantCulture).TrimEnd() : v.GetDouble().ToString("R", CultureInfo.InvariantCulture));
                break;
            case JsonValueKind.Undefined:
                break;
            default:
                sb.Append(v.GetRawText());
                break;
        }
    }
}
