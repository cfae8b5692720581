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
    /// <summary>
    /// The list part for <paramref name="listId"/>: a subscription when <paramref name="subscribe"/> and a channel
    /// resolves (email consent with an email; SMS consent with an E.164 phone), otherwise an add-to-list.
    /// </summary>
    public static ListPart Part(EventView view, string listId, bool subscribe, ConsentChannels consent, bool smsConsent)
    {
        var identity = view.Identity;
        var emailChannel = (consent & ConsentChannels.Email) != 0 && identity.Email.IsPresent;
        var smsChannel = (smsConsent || (consent & ConsentChannels.Sms) != 0) && identity.Phone.IsPresent;
        if (subscribe && (emailChannel || smsChannel))
        {
            return new ListPart(listId, new SubscriberPart(identity.Email.ToString(), identity.Phone.ToString(), emailChannel, smsChannel));
        }
        if (subscribe)
        {
            view.Warn("subscribe is true but no consent channel matches an email or E.164 phone; the profile is added to the list without a subscription");
        }
        return new ListPart(listId, null);
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
