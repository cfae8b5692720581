using System.Text.Json;
using Klaviyo.Functions.Events;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// Writes a Klaviyo profile resource object (<c>{"type":"profile","attributes":{…}}</c>) from an event: identifiers
/// (spec 4.1), attributes, location and custom properties (spec 4.2). Profile-import and the event's embedded profile
/// share it; only events carry <c>anonymous_id</c> (profile-import no longer accepts it).
/// </summary>
internal static class ProfileBuilder
{
    private static readonly JsonEncodedText s_type = JsonEncodedText.Encode("type");
    private static readonly JsonEncodedText s_profile = JsonEncodedText.Encode("profile");
    private static readonly JsonEncodedText s_attributes = JsonEncodedText.Encode("attributes");
    private static readonly JsonEncodedText s_email = JsonEncodedText.Encode("email");
    private static readonly JsonEncodedText s_phoneNumber = JsonEncodedText.Encode("phone_number");
    private static readonly JsonEncodedText s_externalId = JsonEncodedText.Encode("external_id");
    private static readonly JsonEncodedText s_anonymousId = JsonEncodedText.Encode("anonymous_id");
    private static readonly JsonEncodedText s_kx = JsonEncodedText.Encode("_kx");
    private static readonly JsonEncodedText s_location = JsonEncodedText.Encode("location");
    private static readonly JsonEncodedText s_properties = JsonEncodedText.Encode("properties");
    private static readonly JsonEncodedText s_phone = JsonEncodedText.Encode("phone");
    private static readonly JsonEncodedText s_id = JsonEncodedText.Encode("_id");
    private static readonly JsonEncodedText s_dataId = JsonEncodedText.Encode("id");

    [ThreadStatic] private static JsonElement[]? t_location;

    /// <summary>
    /// Writes the profile resource object; a permanent error stops the body (the caller discards it). With a null
    /// <paramref name="writer"/> only the checks run (the ingest's validate-only path), through the same rules.
    /// </summary>
    /// <param name="identityEnd">Where the identifiers end (bytes written by <paramref name="writer"/> since its reset):
    /// they come first, so the object's bytes up to there identify the profile (<see cref="ProfilePart"/>).</param>
    public static TransformResult.Invalid? Write(Utf8JsonWriter? writer, EventView view, KlaviyoOptions options, bool forEvent, out int identityEnd)
    {
        var identity = view.Identity;
        identityEnd = 0;
        if (writer is not null)
        {
            writer.WriteStartObject();
            writer.WriteString(s_type, s_profile);
            if (identity.KlaviyoProfileId is not null)
            {
                writer.WriteString(s_dataId, identity.KlaviyoProfileId);
            }
            writer.WritePropertyName(s_attributes);
            writer.WriteStartObject();

            if (identity.Email.IsPresent)
            {
                identity.Email.Write(writer, s_email);
            }
            if (identity.Phone.IsPresent)
            {
                identity.Phone.Write(writer, s_phoneNumber);
            }
            if (identity.ExternalId.IsPresent)
            {
                identity.ExternalId.Write(writer, s_externalId);
            }
            if (forEvent && identity.AnonymousId.IsPresent)
            {
                identity.AnonymousId.Write(writer, s_anonymousId);
            }
            if (identity.Kx.IsPresent())
            {
                writer.WritePropertyName(s_kx);
                identity.Kx.WriteTo(writer);
            }
            writer.Flush();
            identityEnd = checked((int)writer.BytesCommitted);
        }

        foreach (var attribute in view.Mappings.Tables.Attributes)
        {
            if (Resolve(view, attribute, out var value) is { } error)
            {
                return error;
            }
            if (writer is not null && value.ValueKind != JsonValueKind.Undefined)
            {
                WriteValue(writer, attribute, value);
            }
        }
        if (WriteLocation(writer, view) is { } locationError)
        {
            return locationError;
        }
        if (writer is null)
        {
            // Custom properties are copied as sent: nothing there can be a permanent error.
            return null;
        }

        writer.WritePropertyName(s_properties);
        var propertiesError = options.FlattenProperties
            ? WriteFlattenedCustomProperties(writer, view, options)
            : WriteCustomProperties(writer, view, options);
        if (propertiesError is not null)
        {
            return propertiesError;
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
        return null;
    }

    // Its own method so the closure is only allocated when flattening is on.
    private static TransformResult.Invalid? WriteFlattenedCustomProperties(Utf8JsonWriter writer, EventView view, KlaviyoOptions options) =>
        PropertyFlattener.WriteFlattened(writer, w => WriteCustomProperties(w, view, options));

    /// <summary>
    /// The attribute's value: its first present source (an empty string counts as no value), checked for its kind;
    /// <c>default</c> when there is none. An object where a later source reads inside it (<c>company</c> before
    /// <c>company.name</c>) hands over to that source.
    /// </summary>
    private static TransformResult.Invalid? Resolve(EventView view, ProfileAttribute attribute, out JsonElement value)
    {
        value = default;
        foreach (var candidate in attribute.Sources.In(view))
        {
            var found = candidate.Value;
            if (IsParentOfNested(attribute.Sources, candidate.Source))
            {
                if (found.ValueKind == JsonValueKind.Object)
                {
                    continue;
                }
                if (found.ValueKind != JsonValueKind.String)
                {
                    return new TransformResult.Invalid(candidate.Field, "must be an object or a string");
                }
            }
            if (JsonRead.IsEmptyString(found))
            {
                return null;
            }
            var accepted = attribute.Kind == AttributeKind.String
                ? found.ValueKind == JsonValueKind.String
                : found.ValueKind is JsonValueKind.String or JsonValueKind.Number;
            if (!accepted)
            {
                return new TransformResult.Invalid(candidate.Field,
                    attribute.Kind is AttributeKind.LocationText or AttributeKind.LocationValue ? "must be a string or a number" : "must be a string");
            }
            value = found;
            return null;
        }
        return null;
    }

    // True when the source names an object (company, address) that a later source of the rule reads inside.
    private static bool IsParentOfNested(SourceList rule, Source source)
    {
        if (source.Scope != Scope.TraitObject)
        {
            return false;
        }
        foreach (var other in rule.Sources)
        {
            if ((other.Scope == Scope.TraitCompany && source.Key == "company") || (other.Scope == Scope.TraitAddress && source.Key == "address"))
            {
                return true;
            }
        }
        return false;
    }

    private static void WriteValue(Utf8JsonWriter writer, ProfileAttribute attribute, JsonElement value)
    {
        writer.WritePropertyName(attribute.EncodedName);
        if (attribute.Kind is AttributeKind.String or AttributeKind.LocationValue)
        {
            value.WriteTo(writer);
        }
        else
        {
            JsonRead.WriteAsString(writer, value);
        }
    }

    private static TransformResult.Invalid? WriteLocation(Utf8JsonWriter? writer, EventView view)
    {
        var address = view.Trait("address"u8, "address", out var addressField);
        if (address.IsPresent() && address.ValueKind != JsonValueKind.Object)
        {
            return new TransformResult.Invalid(addressField, "must be an object");
        }

        var table = view.Mappings.Tables.Location;
        var values = t_location is { } cached && cached.Length == table.Length ? cached : t_location = new JsonElement[table.Length];
        var any = false;
        for (var i = 0; i < table.Length; i++)
        {
            if (Resolve(view, table[i], out values[i]) is { } error)
            {
                Array.Clear(values);
                return error;
            }
            any |= values[i].ValueKind != JsonValueKind.Undefined;
        }
        if (any && writer is not null)
        {
            writer.WritePropertyName(s_location);
            writer.WriteStartObject();
            for (var i = 0; i < table.Length; i++)
            {
                if (values[i].ValueKind != JsonValueKind.Undefined)
                {
                    WriteValue(writer, table[i], values[i]);
                }
            }
            writer.WriteEndObject();
        }
        // The elements point into the event's document: not kept past it.
        Array.Clear(values);
        return null;
    }

    /// <summary>Custom profile properties: every unconsumed key of the trait object (spec 4.2), top-level nulls left out.</summary>
    private static TransformResult.Invalid? WriteCustomProperties(Utf8JsonWriter writer, EventView view, KlaviyoOptions options)
    {
        var identity = view.Identity;
        var enforce = options.EnforceEmailAsPrimary && identity.UserId.IsPresent;
        var primary = view.TraitPrimary;
        var secondary = view.TraitSecondary;
        var isIdentify = view.Type == EventType.Identify;
        var consumed = view.Mappings.ConsumedTraitKeys;
        var controls = view.Mappings.ConsumedControlKeys;

        writer.WriteStartObject();
        if (primary.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in primary.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.Null || consumed.Contains(property)
                    || (isIdentify && property.NameEquals("properties"u8)) || (enforce && property.NameEquals("_id"u8)))
                {
                    continue;
                }
                property.WriteTo(writer);
            }
        }
        if (secondary.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in secondary.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.Null || consumed.Contains(property)
                    || (isIdentify && property.NameEquals("properties"u8)) || (enforce && property.NameEquals("_id"u8)) || HasKey(primary, property))
                {
                    continue;
                }
                property.WriteTo(writer);
            }
        }
        // identify's control object is traits.properties merged over context.traits.properties: controls consumed,
        // other keys merged into properties unless the trait object already has them.
        var control = view.ControlProperties;
        var contextControl = view.ContextControlProperties;
        if (control.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in control.EnumerateObject())
            {
                if (SkipsControlObjectKey(property, primary, secondary, enforce, consumed, controls))
                {
                    continue;
                }
                property.WriteTo(writer);
            }
        }
        if (contextControl.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in contextControl.EnumerateObject())
            {
                if (SkipsControlObjectKey(property, primary, secondary, enforce, consumed, controls) || HasKey(control, property))
                {
                    continue;
                }
                property.WriteTo(writer);
            }
        }
        if (identity.UnusablePhone.IsPresent())
        {
            writer.WritePropertyName(s_phone);
            identity.UnusablePhone.WriteTo(writer);
        }
        if (enforce)
        {
            identity.UserId.Write(writer, s_id);
        }
        writer.WriteEndObject();
        return null;
    }

    private static bool SkipsControlObjectKey(JsonProperty property, JsonElement primary, JsonElement secondary, bool enforce, Utf8KeyTable consumed, Utf8KeyTable controls) =>
        property.Value.ValueKind == JsonValueKind.Null || controls.Contains(property)
        || (enforce && property.NameEquals("_id"u8))
        || (!consumed.Contains(property) && (HasKey(primary, property) || HasKey(secondary, property)));

    // True when obj has the property's key with a non-null value (a duplicate that must not be written twice).
    private static bool HasKey(JsonElement obj, JsonProperty property)
    {
        if (obj.ValueKind != JsonValueKind.Object)
        {
            return false;
        }
        var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8PropertyName(property);
        return raw.IndexOf((byte)'\\') < 0
            ? obj.TryGetProperty(raw, out var value) && value.ValueKind != JsonValueKind.Null
            : obj.TryGetProperty(property.Name, out value) && value.ValueKind != JsonValueKind.Null;
    }
}
