using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// Step 2 of identify and group (spec 5): subscribe the profile to the list when <c>subscribe == true</c> and a
/// channel can be resolved, otherwise add it to the list without touching consent. The part holds strings only, never
/// the event's JSON.
/// </summary>
internal static class ListMembership
{
    public const string UnsubscribeNeedsIdentifier = "unsubscribe needs an email or an E.164 phone";

    /// <summary>
    /// The list part for <paramref name="listId"/> (spec 5): <c>subscribe: true</c> subscribes the consent channels that
    /// have an identifier (else adds to the list, with a warning); <c>subscribe: false</c> unsubscribes (with
    /// <c>OnSubscribeFalse=unsubscribe</c>) the consent channels that have an identifier, or every channel that has one
    /// when none does, since an opt-out is never dropped; <c>removeFromList</c> removes; otherwise the profile is added.
    /// </summary>
    public static TransformResult.Invalid? Part(EventView view, KlaviyoOptions options, string listId, ListRequest request, out ListPart? part)
    {
        part = null;
        var identity = view.Identity;
        var hasEmail = identity.Email.IsPresent;
        var hasPhone = identity.Phone.IsPresent;
        var emailChannel = (request.Consent & ConsentChannels.Email) != 0 && hasEmail;
        var smsChannel = (request.SmsConsent || (request.Consent & ConsentChannels.Sms) != 0) && hasPhone;
        switch (request.Subscribe)
        {
            case true when emailChannel || smsChannel:
                var birthDate = smsChannel ? BirthDate(view) : null;
                part = new ListPart(listId, ListAction.Subscribe, new SubscriberPart(identity.Email.ToString(), identity.Phone.ToString(),
                    emailChannel, smsChannel, request.ConsentedAt, birthDate, options.CustomSource.Length == 0 ? null : options.CustomSource));
                return null;
            case true:
                view.Warn("subscribe is true but no consent channel matches an email or E.164 phone; the profile is added to the list without a subscription");
                break;
            case false when options.UnsubscribesOnFalse:
                if (!hasEmail && !hasPhone)
                {
                    return new TransformResult.Invalid(request.SubscribeField, UnsubscribeNeedsIdentifier);
                }
                if (!emailChannel && !smsChannel)
                {
                    (emailChannel, smsChannel) = (hasEmail, hasPhone);
                }
                if (request.Remove)
                {
                    view.Warn("subscribe is false and removeFromList is true: the profile is unsubscribed and stays on the list (subscribe: false decides, spec 5)");
                }
                part = new ListPart(listId, ListAction.Unsubscribe, new SubscriberPart(identity.Email.ToString(), identity.Phone.ToString(), emailChannel, smsChannel));
                return null;
        }
        part = new ListPart(listId, request.Remove ? ListAction.Remove : ListAction.Add);
        return null;
    }

    // traits.birthday as a date (yyyy-MM-dd) for the SMS age gate; a value that is not a date is left out with a warning.
    private static string? BirthDate(EventView view)
    {
        var value = view.Mappings.Tables.Birthday.First(view, out var field);
        if (!value.IsPresent() || JsonRead.IsEmptyString(value))
        {
            return null;
        }
        if (value.ValueKind == JsonValueKind.String
            && DateTimeOffset.TryParse(value.GetString(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var date)
            && date.Year >= 1900)
        {
            return date.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        }
        view.Warn($"{field} is not a date; the SMS subscription is sent without age_gated_date_of_birth");
        return null;
    }

    /// <summary>
    /// Reads a list id (a string or number of letters and digits; it goes into a URL path, so nothing else passes).
    /// An empty string counts as absent.
    /// </summary>
    public static TransformResult.Invalid? ReadListId(JsonElement value, string field, out string? listId) =>
        ReadListId(null, value, field, out listId);

    /// <summary>As above; a value equal to the <c>ListId</c> setting (the usual case) reuses that string.</summary>
    public static TransformResult.Invalid? ReadListId(KlaviyoOptions? options, JsonElement value, string field, out string? listId)
    {
        if (options is { ListId: { Length: > 0 } setting } && value.ValueKind == JsonValueKind.String && value.ValueEquals(setting))
        {
            listId = setting;
            return ListIds.IsValid(setting) ? null : InvalidListId(field, out listId);
        }
        if (JsonRead.Text(value, field, out listId) is { } error)
        {
            return error;
        }
        if (listId is not null && !ListIds.IsValid(listId))
        {
            return InvalidListId(field, out listId);
        }
        return null;
    }

    private static TransformResult.Invalid InvalidListId(string field, out string? listId)
    {
        listId = null;
        return new TransformResult.Invalid(field, ListIds.Rule);
    }

    // "email" and "sms" as sent, compared without allocating; other spellings go through KlaviyoOptions.ParseConsent.
    private static bool TryParseChannel(JsonElement value, out ConsentChannels channel)
    {
        channel = value.ValueEquals("email"u8) ? ConsentChannels.Email
            : value.ValueEquals("sms"u8) ? ConsentChannels.Sms
            : ConsentChannels.None;
        return channel != ConsentChannels.None;
    }

    private sealed record SettingsConsentCache(string? Source, ConsentChannels Channels);

    private static SettingsConsentCache? s_settingsConsent;

    /// <summary>
    /// <see cref="KlaviyoOptions.ConsentChannels"/>, parsed once per value of <see cref="KlaviyoOptions.Consent"/>
    /// rather than once per event (the setting is a string that rarely changes; a new string is parsed again).
    /// </summary>
    public static ConsentChannels SettingsConsent(KlaviyoOptions options)
    {
        var source = options.Consent;
        var cache = s_settingsConsent;
        if (cache is null || !ReferenceEquals(cache.Source, source))
        {
            cache = new SettingsConsentCache(source, KlaviyoOptions.ParseConsent(source, out _, out _));
            s_settingsConsent = cache;
        }
        return cache.Channels;
    }

    /// <summary>Reads a consent value: a string (comma-separated) or an array of strings naming <c>email</c> / <c>sms</c>.</summary>
    public static TransformResult.Invalid? ReadConsent(JsonElement value, string field, out ConsentChannels? consent)
    {
        consent = null;
        switch (value.ValueKind)
        {
            case JsonValueKind.Undefined:
                return null;
            case JsonValueKind.String when TryParseChannel(value, out var channel):
                consent = channel;
                return null;
            case JsonValueKind.String:
                var channels = KlaviyoOptions.ParseConsent(value.GetString(), out var unknown, out _);
                if (unknown.Count > 0)
                {
                    return new TransformResult.Invalid(field, $"'{unknown[0]}' is not one of email, sms");
                }
                consent = channels;
                return null;
            case JsonValueKind.Array:
                var all = ConsentChannels.None;
                var index = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String)
                    {
                        return new TransformResult.Invalid($"{field}[{index}]", "must be a string");
                    }
                    if (TryParseChannel(item, out var one))
                    {
                        all |= one;
                        index++;
                        continue;
                    }
                    all |= KlaviyoOptions.ParseConsent(item.GetString(), out unknown, out _);
                    if (unknown.Count > 0)
                    {
                        return new TransformResult.Invalid($"{field}[{index}]", $"'{unknown[0]}' is not one of email, sms");
                    }
                    index++;
                }
                consent = all;
                return null;
            default:
                return new TransformResult.Invalid(field, "must be a string or an array of strings");
        }
    }
}
