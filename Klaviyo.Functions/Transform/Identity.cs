using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>The profile identifiers of one event (spec 4.1).</summary>
internal sealed class Identity
{
    public const string NoIdentifierRule = "no user identifier: need userId, anonymousId, email or phone";

    // One per thread, refilled for each event: like the EventView it belongs to, it lives only while the event is
    // transformed (list steps copy the strings they need).
    [ThreadStatic] private static Identity? t_reused;

    private Identity()
    {
    }

    /// <summary><c>userId</c> ?? <c>traits.userId</c> ?? <c>context.traits.userId</c>.</summary>
    public EventText UserId { get; private set; }

    /// <summary>What is sent as <c>external_id</c>: the user id, else the anonymous id when nothing else identifies the user.</summary>
    public EventText ExternalId { get; private set; }

    public EventText AnonymousId { get; private set; }

    public EventText Email { get; private set; }

    /// <summary>The phone number in E.164 form, when it normalises to one.</summary>
    public EventText Phone { get; private set; }

    /// <summary>A phone value that is not E.164: kept as profile property <c>phone</c>, not an identifier.</summary>
    public JsonElement UnusablePhone { get; private set; }

    /// <summary>Where <see cref="UnusablePhone"/> was read (<c>traits.phone</c>, …); empty when there is none.</summary>
    public string UnusablePhoneField { get; private set; } = "";

    public JsonElement Kx { get; private set; }

    /// <summary>
    /// The Klaviyo profile id from <c>context.externalId[]</c> (<c>type == "klaviyo-profileId"</c>), sent as the
    /// profile's <c>data.id</c>. Not an identifier for the "no user identifier" rule: it only names a profile Klaviyo
    /// already has, alongside the identifiers.
    /// </summary>
    public string? KlaviyoProfileId { get; private set; }

    public static TransformResult.Invalid? Resolve(EventView view, KlaviyoOptions options, out Identity identity)
    {
        identity = null!;
        // Every type, group included, takes identity from spec 4.1's sources in order (MappingTables): a group whose
        // email is only in traits subscribes that email. Group profile attributes still come from context.traits (spec 4.2).
        var tables = view.Mappings.Tables;
        if (FirstText(view, tables.UserId, out var userId) is { } e1)
        {
            return e1;
        }
        if (FirstText(view, tables.AnonymousId, out var anonymousId) is { } e2)
        {
            return e2;
        }
        if (FirstString(view, tables.Email, allowNumber: false, out var emailElement, out _) is { } e3)
        {
            return e3;
        }
        var email = emailElement.ValueKind == JsonValueKind.Undefined ? default : EventText.Of(emailElement);
        if (FirstString(view, tables.Phone, allowNumber: true, out var phoneElement, out var phoneField) is { } e4)
        {
            return e4;
        }
        var phoneText = phoneElement.ValueKind == JsonValueKind.Undefined ? default : EventText.Of(phoneElement);

        var kx = tables.Kx.First(view, out var kxField);
        if (kx.IsPresent() && kx.ValueKind != JsonValueKind.String)
        {
            return new TransformResult.Invalid(kxField, "must be a string");
        }

        var phone = default(EventText);
        var unusable = default(JsonElement);
        if (phoneText.IsPresent)
        {
            // A number already in E.164 form is used as sent; anything else is normalised from its text.
            phone = PhoneNormalizer.IsE164(phoneText.Utf8) ? phoneText : EventText.FromString(PhoneNormalizer.ToE164(phoneText.ToString()!));
            if (phone.IsAbsent)
            {
                unusable = phoneElement;
                view.Warn($"{phoneField} is not an E.164 phone number; sent as profile property 'phone', not as phone_number");
            }
        }

        if (userId.IsAbsent && anonymousId.IsAbsent && email.IsAbsent && phone.IsAbsent)
        {
            return new TransformResult.Invalid("userId", NoIdentifierRule);
        }
        if (options.EnforceEmailAsPrimary && email.IsAbsent && phone.IsAbsent)
        {
            return new TransformResult.Invalid("email", "EnforceEmailAsPrimary is on: need email or an E.164 phone");
        }

        var externalId = default(EventText);
        if (!options.EnforceEmailAsPrimary)
        {
            externalId = userId.IsPresent ? userId : email.IsAbsent && phone.IsAbsent ? anonymousId : default;
        }

        identity = t_reused ??= new Identity();
        identity.UserId = userId;
        identity.ExternalId = externalId;
        identity.AnonymousId = anonymousId;
        identity.Email = email;
        identity.Phone = phone;
        identity.UnusablePhone = unusable;
        identity.UnusablePhoneField = unusable.ValueKind == JsonValueKind.Undefined ? "" : phoneField;
        identity.Kx = kx.IsPresent() && !JsonRead.IsEmptyString(kx) ? kx : default;
        identity.KlaviyoProfileId = KlaviyoProfileIdOf(view);
        return null;
    }

    /// <summary>
    /// The identifiers the profile is written with, as one text: Klaviyo's id, email, phone_number, external_id,
    /// anonymous_id (events only) and _kx's JSON, joined by U+001F. The same form <c>Bulk.BulkJson.IdentityKey</c>
    /// reads from a profile object, so Klaviyo's import errors (which echo the profile) match it.
    /// </summary>
    public string KeyText(bool forEvent) => string.Join('\u001f',
        KlaviyoProfileId, Email.ToString(), Phone.ToString(), ExternalId.ToString(), forEvent ? AnonymousId.ToString() : null,
        Kx.ValueKind == JsonValueKind.String ? System.Text.Json.JsonSerializer.Serialize(Kx.GetString(), s_kxOptions) : null);

    private static readonly System.Text.Json.JsonSerializerOptions s_kxOptions = new() { Encoder = BodyBuffers.WriterOptions.Encoder };

    /// <summary>Drops the references into the event (see <see cref="EventView.Release"/>).</summary>
    public void Release()
    {
        UserId = ExternalId = AnonymousId = Email = Phone = default;
        UnusablePhone = Kx = default;
        UnusablePhoneField = "";
        KlaviyoProfileId = null;
    }

    // The first context.externalId entry of type "klaviyo-profileId" whose id is a non-empty string or a number.
    // RudderStack's destinations fill context.externalId; a malformed entry is ignored with a warning, not refused.
    internal static string? KlaviyoProfileIdOf(EventView view)
    {
        var externalIds = JsonRead.Get(view.Context, "externalId"u8);
        if (externalIds.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        var ignored = false;
        foreach (var entry in externalIds.EnumerateArray())
        {
            if (JsonRead.Get(entry, "type"u8) is not { ValueKind: JsonValueKind.String } type || !type.ValueEquals("klaviyo-profileId"u8))
            {
                continue;
            }
            var id = JsonRead.Get(entry, "id"u8);
            if (JsonRead.IsText(id))
            {
                return id.ValueKind == JsonValueKind.String ? id.GetString() : id.GetRawText();
            }
            ignored = true;
        }
        if (ignored)
        {
            view.Warn("context.externalId: the klaviyo-profileId entry has no id that is a non-empty string or a number; the profile is sent without data.id");
        }
        return null;
    }

    // The first source that holds text (a string or a number); an empty string counts as absent, another JSON type is an error.
    private static TransformResult.Invalid? FirstText(EventView view, SourceList rule, out EventText value)
    {
        value = default;
        foreach (var candidate in rule.In(view))
        {
            var error = JsonRead.Text(candidate.Value, candidate.Field, out value);
            if (error is not null || value.IsPresent)
            {
                return error;
            }
        }
        return null;
    }

    // Email and phone: the first non-empty string (a phone may also be a number); another JSON type is an error.
    private static TransformResult.Invalid? FirstString(EventView view, SourceList rule, bool allowNumber, out JsonElement element, out string field)
    {
        element = default;
        field = "";
        foreach (var candidate in rule.In(view))
        {
            var value = candidate.Value;
            if (value.ValueKind != JsonValueKind.String && !(allowNumber && value.ValueKind == JsonValueKind.Number))
            {
                return new TransformResult.Invalid(candidate.Field, "must be a string");
            }
            if (JsonRead.IsEmptyString(value))
            {
                continue;
            }
            element = value;
            field = candidate.Field;
            return null;
        }
        return null;
    }
}
