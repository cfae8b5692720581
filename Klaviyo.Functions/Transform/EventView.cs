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

    /// <summary>Looks a key up in the trait object when only presence and value matter (no field name needed).</summary>
    public JsonElement Trait(ReadOnlySpan<byte> key)
    {
        var value = JsonRead.Get(TraitPrimary, key);
        return value.IsPresent() ? value : JsonRead.Get(TraitSecondary, key);
    }

    /// <summary>
    /// Looks a control key up in the merged control object (<c>traits.properties</c> over
    /// <c>context.traits.properties</c>); <paramref name="field"/> names where it was found, or the upper layer when absent.
    /// </summary>
    /// <remarks>The two field names are passed in whole (constants) so a lookup builds no string.</remarks>
    public JsonElement Control(ReadOnlySpan<byte> key, string upperField, string lowerField, out string field)
    {
        var value = JsonRead.Get(ControlProperties, key);
        if (!value.IsPresent())
        {
            var lower = JsonRead.Get(ContextControlProperties, key);
            if (lower.IsPresent())
            {
                field = lowerField;
                return lower;
            }
        }
        field = upperField;
        return value;
    }

    /// <summary>Drops this thread's references into the last event, so a finished event's document is not kept alive.</summary>
    public static void Release()
    {
        if (t_reused is { } view)
        {
            view.Root = view.Context = view.Traits = view.ContextTraits = view.Properties = default;
            view.ControlProperties = view.ContextControlProperties = view.Location = default;
            view.Identity?.Release();
            view.Identity = null!;
            view.Warnings = null;
        }
    }

    public static TransformResult.Invalid? Create(JsonElement root, EventType type, out EventView? view)
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
