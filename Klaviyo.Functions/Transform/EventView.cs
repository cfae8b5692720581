using System.Text.Json;
using Klaviyo.Functions.Events;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// The parts of one event the mappings read, checked for JSON type once (spec 4). Absent and <c>null</c> objects are
/// <c>default</c>. Valid only while the event's <see cref="JsonDocument"/> is alive: plans never capture it.
/// One instance per thread is refilled for each event (a transform never nests), so a view costs no allocation.
/// </summary>
internal sealed class EventView
{
    [ThreadStatic] private static EventView? t_reused;

    private EventView()
    {
    }

    public EventType Type { get; private set; }
    public JsonElement Root { get; private set; }
    public JsonElement Context { get; private set; }
    public JsonElement Traits { get; private set; }
    public JsonElement ContextTraits { get; private set; }
    public JsonElement Properties { get; private set; }

    /// <summary>
    /// Identify only: <c>traits.properties</c>, the control object (listId, subscribe, consent, smsConsent). It is
    /// merged key by key over <see cref="ContextControlProperties"/>, as the trait object is (spec 4.2).
    /// </summary>
    public JsonElement ControlProperties { get; private set; }

    /// <summary>Identify only: <c>context.traits.properties</c>, the control object's lower layer.</summary>
    public JsonElement ContextControlProperties { get; private set; }

    /// <summary><c>context.location</c>.</summary>
    public JsonElement Location { get; private set; }

    /// <summary>Spec 4.2: identify reads <c>traits</c> merged over <c>context.traits</c>; the others <c>context.traits</c>.</summary>
    public JsonElement TraitPrimary => Type == EventType.Identify ? Traits : ContextTraits;

    public JsonElement TraitSecondary => Type == EventType.Identify ? ContextTraits : default;

    public string TraitPrimaryName => Type == EventType.Identify ? "traits" : "context.traits";

    /// <summary>True when the trait object's upper layer is <c>traits</c> (identify).</summary>
    public bool TraitPrimaryIsTraits => Type == EventType.Identify;

    /// <summary>The rule tables this event is mapped with.</summary>
    public Mappings Mappings { get; private set; } = Mappings.Default;

    private JsonElement _address;
    private JsonElement _company;
    private bool _addressFromTraits;
    private bool _companyFromTraits;
    private bool _addressResolved;
    private bool _companyResolved;

    /// <summary>
    /// The trait object's <c>address</c> (or <c>company</c>) when it is an object (first present in the trait object),
    /// else <c>default</c>; <paramref name="fromTraits"/> tells which layer it came from. Looked up once per event.
    /// </summary>
    public JsonElement TraitObjectChild(bool isAddress, out bool fromTraits)
    {
        if (isAddress ? !_addressResolved : !_companyResolved)
        {
            var key = isAddress ? "address"u8 : "company"u8;
            var value = JsonRead.Get(TraitPrimary, key);
            var upper = TraitPrimaryIsTraits;
            if (!value.IsPresent())
            {
                value = JsonRead.Get(TraitSecondary, key);
                upper = false;
            }
            value = value.ValueKind == JsonValueKind.Object ? value : default;
            if (isAddress)
            {
                (_address, _addressFromTraits, _addressResolved) = (value, upper, true);
            }
            else
            {
                (_company, _companyFromTraits, _companyResolved) = (value, upper, true);
            }
        }
        fromTraits = isAddress ? _addressFromTraits : _companyFromTraits;
        return isAddress ? _address : _company;
    }

    public Identity Identity { get; set; } = null!;

    public List<string>? Warnings { get; private set; }

    public void Warn(string warning) => (Warnings ??= []).Add(warning);

    /// <summary>Looks <paramref name="key"/> up in the trait object; <paramref name="field"/> names where it was found.</summary>
    public JsonElement Trait(ReadOnlySpan<byte> key, string keyName, out string field)
    {
        var value = JsonRead.Get(TraitPrimary, key);
        if (value.IsPresent())
        {
            field = TraitPrimaryName + "." + keyName;
            return value;
        }
        value = JsonRead.Get(TraitSecondary, key);
        field = value.IsPresent() ? "context.traits." + keyName : "";
        return value;
    }

    /// <summary>Drops this thread's references into the last event, so a finished event's document is not kept alive.</summary>
    public static void Release()
    {
        if (t_reused is { } view)
        {
            view.Root = view.Context = view.Traits = view.ContextTraits = view.Properties = default;
            view.ControlProperties = view.ContextControlProperties = view.Location = default;
            view._address = view._company = default;
            view._addressResolved = view._companyResolved = false;
            view.Identity?.Release();
            view.Identity = null!;
            view.Warnings = null;
        }
    }

    /// <summary>Checks only, no request bodies (the ingest's validate-only path).</summary>
    public bool ValidateOnly { get; private set; }

    /// <summary>
    /// The event is checked before the ingest stamps it: its <c>messageId</c> and <c>receivedAt</c> will be the
    /// ingest's own (valid by construction), so the event's values of those are not the transform's to check.
    /// </summary>
    public bool StampedByIngest { get; private set; }

    public static TransformResult.Invalid? Create(JsonElement root, EventType type, Mappings mappings, TransformMode mode, out EventView? view)
    {
        view = null;
        if (JsonRead.Object(root, "context"u8, "context", out var context) is { } e1)
        {
            return e1;
        }
        if (JsonRead.Object(root, "traits"u8, "traits", out var traits) is { } e2)
        {
            return e2;
        }
        if (JsonRead.Object(root, "properties"u8, "properties", out var properties) is { } e3)
        {
            return e3;
        }
        if (JsonRead.Object(context, "traits"u8, "context.traits", out var contextTraits) is { } e4)
        {
            return e4;
        }
        if (JsonRead.Object(context, "location"u8, "context.location", out var location) is { } e5)
        {
            return e5;
        }
        var control = default(JsonElement);
        var contextControl = default(JsonElement);
        if (type == EventType.Identify)
        {
            if (JsonRead.Object(traits, "properties"u8, "traits.properties", out control) is { } e6)
            {
                return e6;
            }
            if (JsonRead.Object(contextTraits, "properties"u8, "context.traits.properties", out contextControl) is { } e7)
            {
                return e7;
            }
        }
        view = t_reused ??= new EventView();
        view.Type = type;
        view.Mappings = mappings;
        view.ValidateOnly = mode != TransformMode.Build;
        view.StampedByIngest = mode == TransformMode.CheckBeforeIngestStamp;
        view._address = view._company = default;
        view._addressResolved = view._companyResolved = false;
        view.Root = root;
        view.Context = context;
        view.Traits = traits;
        view.ContextTraits = contextTraits;
        view.Properties = properties;
        view.ControlProperties = control;
        view.ContextControlProperties = contextControl;
        view.Location = location;
        view.Identity = null!;
        // The previous event's list (if any) belongs to its plan now.
        view.Warnings = null;
        return null;
    }
}

/// <summary>How far a transform goes.</summary>
internal enum TransformMode : byte
{
    /// <summary>Every check, then the request bodies.</summary>
    Build,

    /// <summary>Every check, no bodies.</summary>
    Check,

    /// <summary>As <see cref="Check"/>, for an event the ingest has not stamped yet (its messageId and receivedAt are replaced).</summary>
    CheckBeforeIngestStamp,
}
