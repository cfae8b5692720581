using System.Text.Json;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Conformance;

/// <summary>What a difference predicate sees: the vector, the mapped settings and what the relay decided.</summary>
internal sealed record ConformanceCase(RudderVector Vector, MappedSettings Settings, TransformResult? Result)
{
    public JsonElement Event => Vector.Event;

    public string Type => Vector.EventType;

    public bool ReferenceRefuses(string messageStart) =>
        Vector.ExpectedError?.StartsWith(messageStart, StringComparison.Ordinal) == true;

    public bool RelayPlanned => Result is TransformResult.Planned;

    public bool RelayRefusedOn(string field) => Result is TransformResult.Invalid i && i.Field.Contains(field, StringComparison.OrdinalIgnoreCase);

    public JsonElement At(params string[] path)
    {
        var e = Event;
        foreach (var p in path)
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(p, out e))
            {
                return default;
            }
        }
        return e;
    }

    public bool Has(params string[] path) => At(path).ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null)
        && !(At(path).ValueKind == JsonValueKind.String && At(path).GetString()!.Length == 0);
}

/// <summary>A place where the relay deliberately does not do what the reference does, backed by a spec section.</summary>
/// <param name="Covers">True when <paramref name="Covers"/>'s mismatch is explained by this difference for that case.</param>
internal sealed record DeliberateDifference(string Id, string Description, string SpecSection, Func<ConformanceCase, Mismatch, bool> Covers);

/// <summary>
/// The deliberate differences between the relay (spec <c>relay-behaviour.md</c>) and the RudderStack reference
/// (v2/v3 profile-import path). Each names the spec section that decides it. A mismatch no entry covers is a failure.
/// </summary>
internal static class DeliberateDifferences
{
    /// <summary>Differences outside the transform's output, true of every case; named once, not compared per case.</summary>
    public static readonly IReadOnlyList<(string Id, string Description, string SpecSection)> Global =
    [
        ("revision-and-media-type",
            "the relay sends revision 2026-07-15 and application/vnd.api+json; the reference sends 2024-10-15 (v2) / 2026-04-15 (v3) and application/json (reference §1)",
            "§2"),
        ("no-patch-properties",
            "the relay sends no meta.patch_properties (integrations.Klaviyo fieldsToAppend/Unset are not part of the contract); patch_properties and time are outside the compared core",
            "§4.2"),
    ];

    private static readonly string[] EcommerceNames = ["product viewed", "product clicked", "product added", "checkout started"];

    private static readonly string[] ControlKeys = ["subscribe", "consent", "smsConsent", "listId"];

    public static readonly IReadOnlyList<DeliberateDifference> All =
    [
        new("page-skipped",
            "page without SendPageAsTrack is skipped (completed), not an error as in the reference cloud mode",
            "§5 page, §6",
            (c, m) => m.Field == SemanticView.Outcome && c.Type == "page" && c.Result is TransformResult.Skipped),
        new("page-as-track",
            "page with SendPageAsTrack is sent as a 'Viewed … page' event; the reference cloud mode refuses page",
            "§5 page",
            (c, m) => m.Field == SemanticView.Outcome && c.Type == "page" && c.RelayPlanned),
        new("alias-skipped",
            "alias is skipped (Klaviyo has no alias call), not an error",
            "§5 alias, §6",
            (c, m) => m.Field == SemanticView.Outcome && c.Type == "alias" && c.Result is TransformResult.Skipped),
        new("phone-kept-as-property",
            "a phone that is not E.164 after normalisation is kept as profile property phone with a warning, not a refusal",
            "§4.1",
            (c, m) => m.Field == SemanticView.Outcome && c.ReferenceRefuses("Phone number is not in E.164 format") && c.RelayPlanned),
        new("phone-normalised",
            "phone_number is sent normalised to E.164 (formatting stripped); the reference checks the stripped form but sends the original",
            "§4.1",
            (c, m) => m.Field.EndsWith("phone_number", StringComparison.Ordinal) && m.Expected is not null && m.Actual == StripPhone(m.Expected)),
        new("no-anonymous-id-on-profile-import",
            "profile-import carries no anonymous_id (Klaviyo no longer accepts it there since 2025-10-15)",
            "§4.1",
            (c, m) => m.Field == "import.anonymous_id" && m.Actual is null),
        new("unsubscribe-names-its-channels",
            "an unsubscription names the channels it revokes (subscriptions.<channel>.marketing.consent = UNSUBSCRIBED), as revision 2026-07-15's SubscriptionDeleteJobCreateQuery requires; the reference's v2 (revision 2024-10-15) sends email and phone only",
            "§5 identify, §2",
            (c, m) => m.Field == "unsubscribe.channels" && m.Expected is null && m.Actual is not null),
        new("string-false-unsubscribes",
            "subscribe given as the string \"false\" (any case) is false and unsubscribes; the reference tests truthiness, so the string subscribes",
            "§5 identify",
            (c, m) => SubscribeIsStringFalse(c)
                && (IsKind(m, "unsubscribe", expectedSide: false) || IsKind(m, "subscribe", expectedSide: true))),
        new("group-imports-profile-first",
            "group imports the profile (identity per §4.1, attributes from context.traits) before the list call, so the list call can use its id",
            "§5 group",
            (c, m) => c.Type == "group" && IsKind(m, "import", expectedSide: false)),
        new("group-without-subscribe-adds-to-list",
            "group without a subscribe flag adds the profile to the list; the reference refuses it",
            "§5 group",
            (c, m) => m.Field == SemanticView.Outcome && c.Type == "group" && c.ReferenceRefuses("Subscribe flag should be included") && c.RelayPlanned),
        new("list-without-subscribe-adds-to-list",
            "identify with a list id but no subscribe flag of true adds the profile to the list (consent unchanged); the reference sends no list call",
            "§5 identify",
            (c, m) => c.Type == "identify" && !SubscribeIsTrue(c) && IsKind(m, "list-add", expectedSide: false)
                && !(c.Vector.ExpectedRequests ?? []).Any(r => SemanticView.Kind(r.EndpointPath) is "subscribe" or "unsubscribe" or "list-add")),
        new("no-channel-adds-to-list",
            "a subscribe whose consent resolves to no channel with a matching identifier adds to the list instead; the reference (v3) refuses it",
            "§5 identify",
            (c, m) => (m.Field == SemanticView.Outcome && c.ReferenceRefuses("No subscriptions could be resolved") && c.RelayPlanned)
                || (SubscribeIsTrue(c) && (IsKind(m, "subscribe", expectedSide: true) || IsKind(m, "list-add", expectedSide: false))
                    && !(c.Vector.ExpectedRequests ?? []).Any(r => SemanticView.Kind(r.EndpointPath) == "subscribe" && HasChannels(r.Body)))),
        new("control-keys-consumed",
            "the control keys subscribe, consent, smsConsent and listId are consumed, not sent as profile properties",
            "§4.2",
            (c, m) => m.Actual is null && ControlKeys.Any(k => m.Field.EndsWith(".properties." + k, StringComparison.Ordinal))),
        new("ecommerce-renames",
            "e-commerce events are renamed (Viewed Product, Added to Cart, Started Checkout) with the doc's property tables; unmapped properties are kept",
            "§5 track",
            (c, m) => c.Type == "track" && c.At("event").ValueKind == JsonValueKind.String
                && EcommerceNames.Contains(c.At("event").GetString()!.Trim().ToLowerInvariant())
                && (m.Field is "event.metric" or "event.unique_id" || m.Field.StartsWith("event.properties.", StringComparison.Ordinal))),
        new("metric-name-required",
            "a track without an event name is refused; the reference sends an empty metric",
            "§5 track",
            (c, m) => m.Field == SemanticView.Outcome && c.Type == "track" && !c.Has("event") && c.RelayRefusedOn("event")),
        new("value-must-be-a-number",
            "value must be a number or a numeric string; the reference parses leniently (parseFloat(\"12abc\") = 12)",
            "§5 track",
            (c, m) => m.Field == SemanticView.Outcome && c.Vector.ExpectedError is null
                && c.Result is TransformResult.Invalid { Field: "properties.revenue" or "properties.value" or "properties.total" }),
        new("value-precedence",
            "value is revenue ?? value ?? total; the reference takes revenue ?? total ?? value",
            "§5 track",
            (c, m) => m.Field == "event.value" && !c.Has("properties", "revenue") && c.Has("properties", "total") && c.Has("properties", "value")),
        new("identifier-required",
            "an event with no identifier left (userId, anonymousId, email, usable phone) is refused; the reference sends an empty profile",
            "§4.1",
            (c, m) => m.Field == SemanticView.Outcome && c.Vector.ExpectedError is null
                && c.Result is TransformResult.Invalid i && i.Rule.Contains("identifier", StringComparison.OrdinalIgnoreCase)),
        new("enforce-email-requires-email-or-phone",
            "under EnforceEmailAsPrimary an event without email or usable phone is refused; the reference v2/v3 sends it",
            "§4.1",
            (c, m) => m.Field == SemanticView.Outcome && c.Vector.ExpectedError is null && c.Settings.Options.EnforceEmailAsPrimary && c.Result is TransformResult.Invalid),
        new("identify-consent-from-traits-properties",
            "identify reads consent from traits.properties.consent, then the Consent setting; a top-level traits.consent is not a control key there",
            "§5 identify",
            (c, m) => c.Type == "identify" && c.Has("traits", "consent") && IsListCall(m)),
        new("locale-added",
            "the profile carries locale from context.locale",
            "§4.2",
            (c, m) => m.Field.EndsWith(".locale", StringComparison.Ordinal) && m.Expected is null && c.Has("context", "locale")),
        new("external-id-sources",
            "external_id comes from userId, traits.userId, context.traits.userId (not traits.id); anonymousId only when no other identifier exists",
            "§4.1",
            (c, m) => m.Field.EndsWith("external_id", StringComparison.Ordinal)
                && !c.Has("userId") && !c.Has("traits", "userId") && !c.Has("context", "traits", "userId")
                && (m.Actual is null || m.Actual == c.At("anonymousId").ToString())),
        new("subscription-email-sources",
            "the subscription email comes from traits/context.traits/properties only, never from context.externalId",
            "§4.1",
            (c, m) => c.At("context", "externalId").ValueKind == JsonValueKind.Array
                && !c.Has("traits", "email") && !c.Has("context", "traits", "email") && !c.Has("properties", "email")
                && IsListCall(m)),
        new("group-subscribe-flag-from-traits",
            "group reads subscribe from traits.subscribe only (consent falls back to context.traits); without it the profile is added to the list",
            "§5 group",
            (c, m) => c.Type == "group" && !c.Has("traits", "subscribe") && IsListCall(m)),
        new("identity-from-event-properties",
            "track reads email and phone also from properties (properties.email, properties.phone)",
            "§4.1",
            (c, m) => m.Field is "event.profile.email" or "event.profile.phone_number" && m.Expected is null
                && m.Actual == c.At("properties", m.Field == "event.profile.email" ? "email" : "phone").ToString()),
        new("unusable-phone-kept-as-property",
            "a phone that is not E.164 is kept as profile property phone (with a warning)",
            "§4.1",
            (c, m) => m.Field.EndsWith(".properties.phone", StringComparison.Ordinal) && m.Expected is null && m.Actual is not null),
        new("event-properties-kept",
            "event properties are sent as given except email, phone, revenue, value, total, currency (the reference also drops event and value_currency)",
            "§5 track",
            (c, m) => m.Field is "event.properties.event" or "event.properties.value_currency" && m.Expected is null),
        new("patch-fields-are-properties",
            "integrations.Klaviyo fieldsToAppend/Unappend/Unset are not read: the named traits are ordinary profile properties",
            "§4.2",
            (c, m) => m.Field.Contains(".properties.", StringComparison.Ordinal) && m.Expected is null
                && PatchFieldNames(c).Contains(m.Field[(m.Field.LastIndexOf(".properties.", StringComparison.Ordinal) + ".properties.".Length)..])),
        new("external-id-is-user-id",
            "external_id is userId even for RETL events (context.mappedToDestination); the reference replaces it with context.externalId[0].id",
            "§4.1",
            (c, m) => m.Field.EndsWith("external_id", StringComparison.Ordinal) && m.Actual == c.At("userId").ToString()
                && c.Has("context", "mappedToDestination")),
    ];

    /// <summary>Applied to the inputs, not to a mismatch: list ids that are not letters and digits are adapted before comparing.</summary>
    public static readonly (string Id, string Description, string SpecSection) ListIdLettersAndDigits =
        ("listid-letters-and-digits",
            "list ids (the ListId setting, groupId, traits.properties.listId) must be letters and digits, as Klaviyo's are; they go into the add-to-list URL path. Vector ids like group_list_id are adapted to compare the rest",
            "§3, §2");

    /// <summary>The difference that explains <paramref name="m"/>, or null.</summary>
    public static DeliberateDifference? Explain(ConformanceCase c, Mismatch m) => All.FirstOrDefault(d => d.Covers(c, m));

    /// <summary>A mismatch in the list call: which endpoint, or any field of a subscribe / add-to-list request.</summary>
    private static bool IsListCall(Mismatch m) =>
        m.Field is "endpoint.subscribe" or "endpoint.list-add" or "endpoint.unsubscribe"
        || m.Field.StartsWith("subscribe", StringComparison.Ordinal) || m.Field.StartsWith("list-add", StringComparison.Ordinal);

    private static HashSet<string> PatchFieldNames(ConformanceCase c)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var key in new[] { "Klaviyo", "KLAVIYO", "klaviyo" })
        {
            foreach (var list in new[] { "fieldsToAppend", "fieldsToUnappend", "fieldsToUnset" })
            {
                if (c.At("integrations", key, list) is { ValueKind: JsonValueKind.Array } names0)
                {
                    names.UnionWith(names0.EnumerateArray().Select(n => n.ToString()));
                }
            }
        }
        return names;
    }

    /// <summary>The relay's subscribe flag (spec §5): identify's control object (traits.properties over context.traits.properties), group's traits.subscribe.</summary>
    private static bool SubscribeIsTrue(ConformanceCase c)
    {
        var flag = c.Type == "group"
            ? c.At("traits", "subscribe")
            : c.Has("traits", "properties", "subscribe") ? c.At("traits", "properties", "subscribe") : c.At("context", "traits", "properties", "subscribe");
        return flag.ValueKind == JsonValueKind.True
            || (flag.ValueKind == JsonValueKind.String && string.Equals(flag.GetString(), "true", StringComparison.OrdinalIgnoreCase));
    }

    private static bool SubscribeIsStringFalse(ConformanceCase c)
    {
        var flag = c.Type == "group"
            ? c.At("traits", "subscribe")
            : c.Has("traits", "properties", "subscribe") ? c.At("traits", "properties", "subscribe") : c.At("context", "traits", "properties", "subscribe");
        return flag.ValueKind == JsonValueKind.String && string.Equals(flag.GetString(), "false", StringComparison.OrdinalIgnoreCase);
    }

    private static bool IsKind(Mismatch m, string kind, bool expectedSide)
    {
        var onSide = expectedSide ? m.Actual is null : m.Expected is null;
        return onSide && (m.Field == "endpoint." + kind || m.Field.StartsWith(kind + ".", StringComparison.Ordinal) || m.Field.StartsWith(kind + "#", StringComparison.Ordinal));
    }

    private static bool HasChannels(JsonElement body) =>
        body.GetProperty("data").GetProperty("attributes").GetProperty("profiles").GetProperty("data").EnumerateArray()
            .Any(p => p.GetProperty("attributes").TryGetProperty("subscriptions", out var s) && s.ValueKind == JsonValueKind.Object && s.EnumerateObject().Any());

    public static string StripPhone(string phone)
    {
        var stripped = new string(phone.Where(ch => char.IsAsciiDigit(ch) || ch == '+').ToArray());
        return stripped.StartsWith("00", StringComparison.Ordinal) ? "+" + stripped[2..] : stripped;
    }
}
