using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// Every "first present wins" rule of spec 4.1, 4.2 and 5 as data, one line per rule. The mappings read only these
/// tables; the keys that are not repeated as custom properties are derived from them (<see cref="Mappings"/>). Adding
/// a source or an e-commerce rename is one line here.
/// </summary>
/// <remarks>
/// A source is a path: a key at the event's top level (<c>userId</c>) or under a scope: <c>traits.</c>,
/// <c>context.traits.</c>, <c>properties.</c>, <c>context.</c>, <c>context.location.</c>, <c>traitObject.</c> (spec 4.2's
/// trait object: identify's <c>traits</c> over <c>context.traits</c>, the others' <c>context.traits</c>),
/// <c>traitObject.address.</c>, <c>traitObject.company.</c>, <c>control.</c> (identify's <c>traits.properties</c>
/// over <c>context.traits.properties</c>) and <c>integrations.Klaviyo.</c> (Segment's per-destination options).
/// Segment's names (spec 4) follow RudderStack's in each rule, so they count only when RudderStack's are absent.
/// </remarks>
internal sealed record MappingTables
{
    public static readonly MappingTables Default = new();

    // Spec 4.1, identity.
    public SourceList UserId { get; init; } = new("userId", "traits.userId", "context.traits.userId");
    public SourceList AnonymousId { get; init; } = new("anonymousId");
    public SourceList Email { get; init; } = new("traits.email", "context.traits.email", "properties.email");
    public SourceList Phone { get; init; } = new("traits.phone", "context.traits.phone", "properties.phone",
        "traits.phoneNumber", "context.traits.phoneNumber", "properties.phoneNumber");
    public SourceList Kx { get; init; } = new("traits._kx", "context.traits._kx");

    // Spec 4.2, profile attributes.
    public ProfileAttribute[] Attributes { get; init; } =
    [
        new("first_name", AttributeKind.Text, "traitObject.firstName", "traitObject.firstname", "traitObject.first_name"),
        new("last_name", AttributeKind.Text, "traitObject.lastName", "traitObject.lastname", "traitObject.last_name"),
        new("organization", AttributeKind.Text, "traitObject.organization", "traitObject.company", "traitObject.company.name"),
        new("title", AttributeKind.Text, "traitObject.title"),
        new("image", AttributeKind.Text, "traitObject.image", "traitObject.avatar"),
        new("locale", AttributeKind.String, "context.locale"),
    ];

    /// <summary>The profile's <c>location</c> object.</summary>
    public ProfileAttribute[] Location { get; init; } =
    [
        new("address1", AttributeKind.LocationText, "traitObject.street", "traitObject.address.street"),
        new("address2", AttributeKind.LocationText, "traitObject.street2", "traitObject.address.street2"),
        new("city", AttributeKind.LocationText, "traitObject.city", "traitObject.address.city"),
        new("region", AttributeKind.LocationText, "traitObject.region", "traitObject.state", "traitObject.address.region", "traitObject.address.state"),
        new("country", AttributeKind.LocationText, "traitObject.country", "traitObject.address.country"),
        new("zip", AttributeKind.LocationText, "traitObject.zip", "traitObject.postalCode", "traitObject.postalcode",
            "traitObject.address.zip", "traitObject.address.postalCode", "traitObject.address.postalcode"),
        new("timezone", AttributeKind.LocationText, "traitObject.timezone"),
        new("ip", AttributeKind.LocationText, "context.ip"),
        new("latitude", AttributeKind.LocationValue, "context.location.latitude"),
        new("longitude", AttributeKind.LocationValue, "context.location.longitude"),
    ];

    /// <summary>Trait keys consumed though no rule reads them from the trait object (spec 4.2 lists them).</summary>
    public string[] AlsoConsumedTraits { get; init; } = ["anonymousId"];

    // Spec 5, identify: list and consent controls.
    public SourceList IdentifyListId { get; init; } = new("control.listId", "properties.listId", "integrations.Klaviyo.listId");
    public SourceList IdentifySubscribe { get; init; } = new("control.subscribe");
    public SourceList IdentifyConsent { get; init; } = new("control.consent");
    public SourceList IdentifySmsConsent { get; init; } = new("control.smsConsent");
    public SourceList IdentifyRemoveFromList { get; init; } = new("control.removeFromList");
    public SourceList IdentifyConsentedAt { get; init; } = new("control.consentedAt");

    // Spec 5, group.
    public SourceList GroupListId { get; init; } = new("groupId");
    public SourceList GroupSubscribe { get; init; } = new("traits.subscribe");
    public SourceList GroupConsent { get; init; } = new("traits.consent", "context.traits.consent");
    public SourceList GroupSmsConsent { get; init; } = new("traits.smsConsent", "context.traits.smsConsent");
    public SourceList GroupRemoveFromList { get; init; } = new("traits.removeFromList");
    public SourceList GroupConsentedAt { get; init; } = new("traits.consentedAt", "context.traits.consentedAt");

    /// <summary>Sent as <c>age_gated_date_of_birth</c> when SMS is subscribed (spec 5); kept as a custom property too.</summary>
    public SourceList Birthday { get; init; } = new("traitObject.birthday");

    // Spec 5, track, screen and page.
    public SourceList TrackName { get; init; } = new("event");
    public SourceList ScreenName { get; init; } = new("name", "properties.name", "event");
    public SourceList PageName { get; init; } = new("name", "properties.name");
    public SourceList PageCategory { get; init; } = new("category", "properties.category");
    public SourceList Time { get; init; } = new("timestamp", "originalTimestamp", "receivedAt");
    public SourceList Value { get; init; } = new("properties.revenue", "properties.value", "properties.total");
    public SourceList Currency { get; init; } = new("properties.currency");
    public SourceList CheckoutUniqueId { get; init; } = new("properties.order_id", "properties.orderId");
    public SourceList UniqueId { get; init; } = new("messageId");

    // Spec 5, track: Order Completed under Klaviyo__OrderCompleted=placedOrder (OrderEvents holds its property tables).
    /// <summary>The track name (compared case-insensitively, trimmed) that becomes Placed Order + Ordered Product.</summary>
    public string OrderCompletedName { get; init; } = "order completed";
    public SourceList OrderId { get; init; } = new("properties.order_id", "properties.orderId");
    public SourceList OrderItems { get; init; } = new("properties.products", "properties.items");

    /// <summary>Item keys naming an ordered product in its <c>unique_id</c>, first present wins; else the item's index.</summary>
    public string[] OrderedProductKey { get; init; } = ["product_id", "productId", "sku", "id"];

    /// <summary>Incoming track names (compared case-insensitively, trimmed) and the e-commerce event they become.</summary>
    public (string Name, EcommerceEvent Event)[] EcommerceRenames { get; init; } =
    [
        ("product viewed", EcommerceEvent.ViewedProduct),
        ("product clicked", EcommerceEvent.ViewedProduct),
        ("product added", EcommerceEvent.AddedToCart),
        ("checkout started", EcommerceEvent.StartedCheckout),
    ];
}

/// <summary>How a profile attribute's value is checked and written.</summary>
internal enum AttributeKind : byte
{
    /// <summary>A string or a number, written as a string; anything else: "must be a string".</summary>
    Text,

    /// <summary>A string only, written as sent.</summary>
    String,

    /// <summary>A string or a number, written as a string; anything else: "must be a string or a number".</summary>
    LocationText,

    /// <summary>A string or a number, written as sent (Klaviyo takes either for coordinates).</summary>
    LocationValue,
}

/// <summary>A Klaviyo profile attribute and where it comes from, first present wins.</summary>
internal sealed class ProfileAttribute(string name, AttributeKind kind, params string[] sources)
{
    public string Name { get; } = name;

    public JsonEncodedText EncodedName { get; } = JsonEncodedText.Encode(name);

    public AttributeKind Kind { get; } = kind;

    public SourceList Sources { get; } = new(sources);
}

/// <summary>
/// A <see cref="MappingTables"/> ready for use: the e-commerce lookup and the consumed-key sets derived from it.
/// The transformer builds one per table set (once); <see cref="Default"/> serves the standard tables.
/// </summary>
internal sealed class Mappings
{
    public static readonly Mappings Default = new(MappingTables.Default);

    private readonly (byte[] Name, EcommerceEvent Event)[] _renames;

    public Mappings(MappingTables tables)
    {
        Tables = tables;
        _renames = Array.ConvertAll(tables.EcommerceRenames, r => (System.Text.Encoding.UTF8.GetBytes(r.Name), r.Event));

        var profileRules = tables.Attributes.Concat(tables.Location).Select(a => a.Sources)
            .Concat([tables.UserId, tables.AnonymousId, tables.Email, tables.Phone, tables.Kx,
                tables.IdentifyListId, tables.IdentifySubscribe, tables.IdentifyConsent, tables.IdentifySmsConsent,
                tables.IdentifyRemoveFromList, tables.IdentifyConsentedAt,
                tables.GroupSubscribe, tables.GroupConsent, tables.GroupSmsConsent, tables.GroupRemoveFromList, tables.GroupConsentedAt]);
        var traitKeys = new List<string>();
        var controlKeys = new List<string>();
        foreach (var source in profileRules.SelectMany(r => r.Sources))
        {
            switch (source.Scope)
            {
                case Scope.Traits or Scope.ContextTraits or Scope.TraitObject:
                    traitKeys.Add(source.Key);
                    break;
                // A nested object is consumed whole.
                case Scope.TraitAddress:
                    traitKeys.Add("address");
                    break;
                case Scope.TraitCompany:
                    traitKeys.Add("company");
                    break;
                case Scope.Control:
                    // Control keys are consumed in the control object and, like every control, in the trait object.
                    controlKeys.Add(source.Key);
                    traitKeys.Add(source.Key);
                    break;
            }
        }
        traitKeys.AddRange(tables.AlsoConsumedTraits);
        ConsumedTraitKeys = new Utf8KeyTable([.. traitKeys.Distinct(StringComparer.Ordinal)]);
        ConsumedControlKeys = new Utf8KeyTable([.. controlKeys.Distinct(StringComparer.Ordinal)]);

        // The event's properties that feed the profile or value / value_currency (spec 5, track: "consumed").
        ConsumedEventProperties = new Utf8KeyTable([.. new[] { tables.Email, tables.Phone, tables.Value, tables.Currency }
            .SelectMany(r => r.Sources).Where(s => s.Scope == Scope.Properties).Select(s => s.Key).Distinct(StringComparer.Ordinal)]);
    }

    public MappingTables Tables { get; }

    /// <summary>Keys of the trait object not repeated in the profile's custom properties.</summary>
    public Utf8KeyTable ConsumedTraitKeys { get; }

    /// <summary>Keys of identify's control object (<c>traits.properties</c>) that are controls, not custom properties.</summary>
    public Utf8KeyTable ConsumedControlKeys { get; }

    /// <summary>Keys of an event's properties not repeated in the Klaviyo event's properties.</summary>
    public Utf8KeyTable ConsumedEventProperties { get; }

    /// <summary>The e-commerce event a trimmed ASCII track name (UTF-8) stands for, or null.</summary>
    public EcommerceEvent? FindEcommerce(ReadOnlySpan<byte> asciiName)
    {
        foreach (var (name, @event) in _renames)
        {
            // ASCII only: there ordinal ignore-case and ASCII ignore-case agree.
            if (System.Text.Ascii.EqualsIgnoreCase(asciiName, name))
            {
                return @event;
            }
        }
        return null;
    }

    /// <summary>The e-commerce event a trimmed track name stands for, or null.</summary>
    public EcommerceEvent? FindEcommerce(string trimmedName)
    {
        foreach (var (name, @event) in Tables.EcommerceRenames)
        {
            if (string.Equals(name, trimmedName, StringComparison.OrdinalIgnoreCase))
            {
                return @event;
            }
        }
        return null;
    }
}
