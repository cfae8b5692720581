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
    // Keys of the trait object that are mapped or are controls, so not repeated in profile properties (spec 4.2).
    private static readonly Utf8KeyTable s_consumed = new(
        "firstName", "firstname", "first_name", "lastName", "lastname", "last_name",
        "organization", "company", "title", "image", "avatar",
        "street", "street2", "address", "city", "region", "state", "country", "zip", "postalCode", "postalcode", "timezone",
        "email", "phone", "userId", "anonymousId", "_kx",
        "subscribe", "consent", "smsConsent", "listId");

    // Keys of identify's traits.properties that are controls, not custom properties (spec 4.2).
    private static readonly Utf8KeyTable s_controls = new("listId", "subscribe", "consent", "smsConsent");

    private static readonly JsonEncodedText s_type = JsonEncodedText.Encode("type");
    private static readonly JsonEncodedText s_profile = JsonEncodedText.Encode("profile");
    private static readonly JsonEncodedText s_attributes = JsonEncodedText.Encode("attributes");
    private static readonly JsonEncodedText s_email = JsonEncodedText.Encode("email");
    private static readonly JsonEncodedText s_phoneNumber = JsonEncodedText.Encode("phone_number");
    private static readonly JsonEncodedText s_externalId = JsonEncodedText.Encode("external_id");
    private static readonly JsonEncodedText s_anonymousId = JsonEncodedText.Encode("anonymous_id");
    private static readonly JsonEncodedText s_kx = JsonEncodedText.Encode("_kx");
    private static readonly JsonEncodedText s_firstName = JsonEncodedText.Encode("first_name");
    private static readonly JsonEncodedText s_lastName = JsonEncodedText.Encode("last_name");
    private static readonly JsonEncodedText s_organization = JsonEncodedText.Encode("organization");
    private static readonly JsonEncodedText s_title = JsonEncodedText.Encode("title");
    private static readonly JsonEncodedText s_image = JsonEncodedText.Encode("image");
    private static readonly JsonEncodedText s_locale = JsonEncodedText.Encode("locale");
    private static readonly JsonEncodedText s_location = JsonEncodedText.Encode("location");
    private static readonly JsonEncodedText s_address1 = JsonEncodedText.Encode("address1");
    private static readonly JsonEncodedText s_address2 = JsonEncodedText.Encode("address2");
    private static readonly JsonEncodedText s_city = JsonEncodedText.Encode("city");
    private static readonly JsonEncodedText s_region = JsonEncodedText.Encode("region");
    private static readonly JsonEncodedText s_country = JsonEncodedText.Encode("country");
    private static readonly JsonEncodedText s_zip = JsonEncodedText.Encode("zip");
    private static readonly JsonEncodedText s_timezone = JsonEncodedText.Encode("timezone");
    private static readonly JsonEncodedText s_ip = JsonEncodedText.Encode("ip");
    private static readonly JsonEncodedText s_latitude = JsonEncodedText.Encode("latitude");
    private static readonly JsonEncodedText s_longitude = JsonEncodedText.Encode("longitude");
    private static readonly JsonEncodedText s_properties = JsonEncodedText.Encode("properties");
    private static readonly JsonEncodedText s_phone = JsonEncodedText.Encode("phone");
    private static readonly JsonEncodedText s_id = JsonEncodedText.Encode("_id");
    private static readonly JsonEncodedText s_dataId = JsonEncodedText.Encode("id");

    /// <summary>Writes the profile resource object; a permanent error stops the body (the caller discards it).</summary>
    public static TransformResult.Invalid? Write(Utf8JsonWriter writer, EventView view, KlaviyoOptions options, bool forEvent)
    {
        var identity = view.Identity;
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

        var error = WriteText(writer, view, s_firstName, "firstName"u8, "firstName", "firstname"u8, "firstname", "first_name"u8, "first_name")
            ?? WriteText(writer, view, s_lastName, "lastName"u8, "lastName", "lastname"u8, "lastname", "last_name"u8, "last_name")
            ?? WriteOrganization(writer, view)
            ?? WriteText(writer, view, s_title, "title"u8, "title", default, null, default, null)
            ?? WriteText(writer, view, s_image, "image"u8, "image", "avatar"u8, "avatar", default, null)
            ?? WriteLocale(writer, view)
            ?? WriteLocation(writer, view);
        if (error is not null)
        {
            return error;
        }

        writer.WritePropertyName(s_properties);
        error = options.FlattenProperties
            ? WriteFlattenedCustomProperties(writer, view, options)
            : WriteCustomProperties(writer, view, options);
        if (error is not null)
        {
            return error;
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
        return null;
    }

    // Its own method so the closure is only allocated when flattening is on.
    private static TransformResult.Invalid? WriteFlattenedCustomProperties(Utf8JsonWriter writer, EventView view, KlaviyoOptions options) =>
        PropertyFlattener.WriteFlattened(writer, w => WriteCustomProperties(w, view, options));

    private static TransformResult.Invalid? WriteText(
        Utf8JsonWriter writer, EventView view, JsonEncodedText attribute,
        ReadOnlySpan<byte> key1, string name1, ReadOnlySpan<byte> key2, string? name2, ReadOnlySpan<byte> key3, string? name3)
    {
        var value = view.Trait(key1);
        var name = name1;
        if (!value.IsPresent() && name2 is not null)
        {
            value = view.Trait(key2);
            name = name2;
        }
        if (!value.IsPresent() && name3 is not null)
        {
            value = view.Trait(key3);
            name = name3;
        }
        return WriteAttribute(writer, view, attribute, value, name);
    }

    private static TransformResult.Invalid? WriteAttribute(Utf8JsonWriter writer, EventView view, JsonEncodedText attribute, JsonElement value, string name)
    {
        if (!value.IsPresent() || JsonRead.IsEmptyString(value))
        {
            return null;
        }
        if (value.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
        {
            view.Trait(System.Text.Encoding.UTF8.GetBytes(name), name, out var field);
            return new TransformResult.Invalid(field, "must be a string");
        }
        writer.WritePropertyName(attribute);
        JsonRead.WriteAsString(writer, value);
        return null;
    }

    private static TransformResult.Invalid? WriteOrganization(Utf8JsonWriter writer, EventView view)
    {
        var organization = view.Trait("organization"u8);
        if (organization.IsPresent())
        {
            return WriteAttribute(writer, view, s_organization, organization, "organization");
        }
        var company = view.Trait("company"u8, "company", out var field);
        switch (company.ValueKind)
        {
            case JsonValueKind.Undefined:
                return null;
            case JsonValueKind.String:
                // A bare company name is what a user means by it.
                return WriteAttribute(writer, view, s_organization, company, "company");
            case JsonValueKind.Object:
                var name = JsonRead.Get(company, "name"u8);
                if (!name.IsPresent() || JsonRead.IsEmptyString(name))
                {
                    return null;
                }
                if (JsonRead.CheckText(name, field + ".name") is { } error)
                {
                    return error;
                }
                writer.WritePropertyName(s_organization);
                JsonRead.WriteAsString(writer, name);
                return null;
            default:
                return new TransformResult.Invalid(field, "must be an object or a string");
        }
    }

    private static TransformResult.Invalid? WriteLocale(Utf8JsonWriter writer, EventView view)
    {
        var locale = JsonRead.Get(view.Context, "locale"u8);
        if (!locale.IsPresent() || JsonRead.IsEmptyString(locale))
        {
            return null;
        }
        if (locale.ValueKind != JsonValueKind.String)
        {
            return new TransformResult.Invalid("context.locale", "must be a string");
        }
        writer.WritePropertyName(s_locale);
        locale.WriteTo(writer);
        return null;
    }

    private static TransformResult.Invalid? WriteLocation(Utf8JsonWriter writer, EventView view)
    {
        var address = view.Trait("address"u8, "address", out var addressField);
        if (address.IsPresent() && address.ValueKind != JsonValueKind.Object)
        {
            return new TransformResult.Invalid(addressField, "must be an object");
        }

        Span<LocationValue> values =
        [
            new(s_address1, TraitOrAddress(view, address, "street"u8, default, default, out var f0), f0),
            new(s_address2, TraitOrAddress(view, address, "street2"u8, default, default, out var f1), f1),
            new(s_city, TraitOrAddress(view, address, "city"u8, default, default, out var f2), f2),
            new(s_region, TraitOrAddress(view, address, "region"u8, "state"u8, default, out var f3), f3),
            new(s_country, TraitOrAddress(view, address, "country"u8, default, default, out var f4), f4),
            new(s_zip, TraitOrAddress(view, address, "zip"u8, "postalCode"u8, "postalcode"u8, out var f5), f5),
            new(s_timezone, view.Trait("timezone"u8), LocationField.Timezone),
            new(s_ip, JsonRead.Get(view.Context, "ip"u8), LocationField.Ip),
            new(s_latitude, JsonRead.Get(view.Location, "latitude"u8), LocationField.Latitude),
            new(s_longitude, JsonRead.Get(view.Location, "longitude"u8), LocationField.Longitude),
        ];

        var any = false;
        foreach (var value in values)
        {
            if (!value.Value.IsPresent() || JsonRead.IsEmptyString(value.Value))
            {
                continue;
            }
            if (value.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
            {
                return new TransformResult.Invalid(FieldName(view, value.Field, addressField), "must be a string or a number");
            }
            any = true;
        }
        if (!any)
        {
            return null;
        }

        writer.WritePropertyName(s_location);
        writer.WriteStartObject();
        foreach (var value in values)
        {
            if (!value.Value.IsPresent() || JsonRead.IsEmptyString(value.Value))
            {
                continue;
            }
            writer.WritePropertyName(value.Name);
            if (value.Field is LocationField.Latitude or LocationField.Longitude)
            {
                value.Value.WriteTo(writer); // Klaviyo takes a string or a number here.
            }
            else
            {
                JsonRead.WriteAsString(writer, value.Value);
            }
        }
        writer.WriteEndObject();
        return null;
    }

    private enum LocationField
    {
        Trait,
        Address,
        Timezone,
        Ip,
        Latitude,
        Longitude,
    }

    private readonly record struct LocationValue(JsonEncodedText Name, JsonElement Value, LocationField Field);

    // The key (or its alternatives) at the top of the trait object, else under its address object.
    private static JsonElement TraitOrAddress(EventView view, JsonElement address, ReadOnlySpan<byte> key1, ReadOnlySpan<byte> key2, ReadOnlySpan<byte> key3, out LocationField field)
    {
        field = LocationField.Trait;
        var value = view.Trait(key1);
        if (!value.IsPresent() && !key2.IsEmpty)
        {
            value = view.Trait(key2);
        }
        if (!value.IsPresent() && !key3.IsEmpty)
        {
            value = view.Trait(key3);
        }
        if (value.IsPresent())
        {
            return value;
        }
        field = LocationField.Address;
        value = JsonRead.Get(address, key1);
        if (!value.IsPresent() && !key2.IsEmpty)
        {
            value = JsonRead.Get(address, key2);
        }
        if (!value.IsPresent() && !key3.IsEmpty)
        {
            value = JsonRead.Get(address, key3);
        }
        return value;
    }

    private static string FieldName(EventView view, LocationField field, string addressField) => field switch
    {
        LocationField.Address => addressField + ".*",
        LocationField.Timezone => view.TraitPrimaryName + ".timezone",
        LocationField.Ip => "context.ip",
        LocationField.Latitude => "context.location.latitude",
        LocationField.Longitude => "context.location.longitude",
        _ => view.TraitPrimaryName + " (location)",
    };

    /// <summary>Custom profile properties: every unconsumed key of the trait object (spec 4.2), top-level nulls left out.</summary>
    private static TransformResult.Invalid? WriteCustomProperties(Utf8JsonWriter writer, EventView view, KlaviyoOptions options)
    {
        var identity = view.Identity;
        var enforce = options.EnforceEmailAsPrimary && identity.UserId.IsPresent;
        var primary = view.TraitPrimary;
        var secondary = view.TraitSecondary;
        var isIdentify = view.Type == EventType.Identify;

        writer.WriteStartObject();
        if (primary.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in primary.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.Null || s_consumed.Contains(property)
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
                if (property.Value.ValueKind == JsonValueKind.Null || s_consumed.Contains(property)
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
                if (SkipsControlObjectKey(property, primary, secondary, enforce))
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
                if (SkipsControlObjectKey(property, primary, secondary, enforce) || HasKey(control, property))
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

    private static bool SkipsControlObjectKey(JsonProperty property, JsonElement primary, JsonElement secondary, bool enforce) =>
        property.Value.ValueKind == JsonValueKind.Null || s_controls.Contains(property)
        || (enforce && property.NameEquals("_id"u8))
        || (!s_consumed.Contains(property) && (HasKey(primary, property) || HasKey(secondary, property)));

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
