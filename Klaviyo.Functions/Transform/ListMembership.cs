using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// Step 2 of identify and group (spec 5): subscribe the profile to the list when <c>subscribe == true</c> and a
/// channel can be resolved, otherwise add it to the list without touching consent. Built from the profile id that
/// step 1 (profile-import) answers with; captures only strings, never the event's JSON.
/// </summary>
internal sealed class ListMembership
{
    private static readonly JsonEncodedText s_data = JsonEncodedText.Encode("data");
    private static readonly JsonEncodedText s_type = JsonEncodedText.Encode("type");
    private static readonly JsonEncodedText s_id = JsonEncodedText.Encode("id");
    private static readonly JsonEncodedText s_profile = JsonEncodedText.Encode("profile");
    private static readonly JsonEncodedText s_list = JsonEncodedText.Encode("list");
    private static readonly JsonEncodedText s_job = JsonEncodedText.Encode("profile-subscription-bulk-create-job");
    private static readonly JsonEncodedText s_attributes = JsonEncodedText.Encode("attributes");
    private static readonly JsonEncodedText s_profiles = JsonEncodedText.Encode("profiles");
    private static readonly JsonEncodedText s_relationships = JsonEncodedText.Encode("relationships");
    private static readonly JsonEncodedText s_email = JsonEncodedText.Encode("email");
    private static readonly JsonEncodedText s_sms = JsonEncodedText.Encode("sms");
    private static readonly JsonEncodedText s_phoneNumber = JsonEncodedText.Encode("phone_number");
    private static readonly JsonEncodedText s_subscriptions = JsonEncodedText.Encode("subscriptions");
    private static readonly JsonEncodedText s_marketing = JsonEncodedText.Encode("marketing");
    private static readonly JsonEncodedText s_consent = JsonEncodedText.Encode("consent");
    private static readonly JsonEncodedText s_subscribed = JsonEncodedText.Encode("SUBSCRIBED");

    private readonly string _listId;
    private readonly string? _email;
    private readonly string? _phone;
    private readonly bool _emailChannel;
    private readonly bool _smsChannel;

    private ListMembership(string listId, string? email, string? phone, bool emailChannel, bool smsChannel)
    {
        _listId = listId;
        _email = email;
        _phone = phone;
        _emailChannel = emailChannel;
        _smsChannel = smsChannel;
    }

    /// <summary>
    /// The step for <paramref name="listId"/>: a subscription when <paramref name="subscribe"/> and a channel resolves
    /// (email consent with an email; SMS consent with an E.164 phone), otherwise an add-to-list.
    /// </summary>
    public static PlanStep Step(EventView view, string listId, bool subscribe, ConsentChannels consent, bool smsConsent)
    {
        var identity = view.Identity;
        var emailChannel = (consent & ConsentChannels.Email) != 0 && identity.Email.IsPresent;
        var smsChannel = (smsConsent || (consent & ConsentChannels.Sms) != 0) && identity.Phone.IsPresent;
        if (subscribe && (emailChannel || smsChannel))
        {
            var subscription = new ListMembership(listId, identity.Email.ToString(), identity.Phone.ToString(), emailChannel, smsChannel);
            return PlanStep.WithProfileId(KlaviyoEndpoint.SubscribeProfiles, subscription.BuildSubscription);
        }
        if (subscribe)
        {
            view.Warn("subscribe is true but no consent channel matches an email or E.164 phone; the profile is added to the list without a subscription");
        }
        var membership = new ListMembership(listId, null, null, false, false);
        return PlanStep.WithProfileId(KlaviyoEndpoint.AddProfilesToList, membership.BuildAddToList);
    }

    private KlaviyoRequest BuildSubscription(string profileId)
    {
        var writer = BodyBuffers.Body();
        writer.WriteStartObject();
        writer.WritePropertyName(s_data);
        writer.WriteStartObject();
        writer.WriteString(s_type, s_job);
        writer.WritePropertyName(s_attributes);
        writer.WriteStartObject();
        writer.WritePropertyName(s_profiles);
        writer.WriteStartObject();
        writer.WritePropertyName(s_data);
        writer.WriteStartArray();
        writer.WriteStartObject();
        writer.WriteString(s_type, s_profile);
        writer.WriteString(s_id, profileId);
        writer.WritePropertyName(s_attributes);
        writer.WriteStartObject();
        if (_email is not null)
        {
            writer.WriteString(s_email, _email);
        }
        if (_phone is not null)
        {
            writer.WriteString(s_phoneNumber, _phone);
        }
        writer.WritePropertyName(s_subscriptions);
        writer.WriteStartObject();
        if (_emailChannel)
        {
            WriteSubscribed(writer, s_email);
        }
        if (_smsChannel)
        {
            WriteSubscribed(writer, s_sms);
        }
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WritePropertyName(s_relationships);
        writer.WriteStartObject();
        writer.WritePropertyName(s_list);
        writer.WriteStartObject();
        writer.WritePropertyName(s_data);
        writer.WriteStartObject();
        writer.WriteString(s_type, s_list);
        writer.WriteString(s_id, _listId);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
        return new KlaviyoRequest(KlaviyoEndpoint.SubscribeProfiles, KlaviyoApi.SubscribeProfilesPath, BodyBuffers.ToArray(writer));
    }

    private static void WriteSubscribed(Utf8JsonWriter writer, JsonEncodedText channel)
    {
        writer.WritePropertyName(channel);
        writer.WriteStartObject();
        writer.WritePropertyName(s_marketing);
        writer.WriteStartObject();
        writer.WriteString(s_consent, s_subscribed);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private KlaviyoRequest BuildAddToList(string profileId)
    {
        var writer = BodyBuffers.Body();
        writer.WriteStartObject();
        writer.WritePropertyName(s_data);
        writer.WriteStartArray();
        writer.WriteStartObject();
        writer.WriteString(s_type, s_profile);
        writer.WriteString(s_id, profileId);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
        return new KlaviyoRequest(KlaviyoEndpoint.AddProfilesToList, AddProfilesToListPath(_listId), BodyBuffers.ToArray(writer));
    }

    private sealed record ListPath(string ListId, string Path);

    private static ListPath? s_lastListPath;

    // Most events name the same list (the ListId setting), so the last path is kept rather than built per event.
    private static string AddProfilesToListPath(string listId)
    {
        var last = s_lastListPath;
        if (last is null || !string.Equals(last.ListId, listId, StringComparison.Ordinal))
        {
            last = new ListPath(listId, KlaviyoApi.AddProfilesToListPath(listId));
            s_lastListPath = last;
        }
        return last.Path;
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
