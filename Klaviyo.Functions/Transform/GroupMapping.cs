using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// group (spec 5): the list is <c>groupId</c>. Profile-import (identity per spec 4.1, attributes from
/// <c>context.traits</c>), then subscribe when
/// <c>traits.subscribe == true</c>, else add to the list. Consent and SMS consent: traits, then context.traits, then settings.
/// Under <c>GroupMode=profile</c> the profile-import alone (<c>skip</c> never gets here: the transformer skips).
/// </summary>
internal static class GroupMapping
{
    public static TransformResult Map(EventView view, KlaviyoOptions options, DateTimeOffset now)
    {
        if (options.GroupModeIs(KlaviyoOptions.GroupModeProfile))
        {
            return ProfileImport.Plan(view, options, null, now);
        }
        var tables = view.Mappings.Tables;
        var groupId = tables.GroupListId.First(view, out var groupIdField);
        var error = ListMembership.ReadListId(groupId, groupIdField, out var listId);
        if (error is not null)
        {
            return error;
        }
        if (listId is null)
        {
            return new TransformResult.Invalid(tables.GroupListId.Sources[0].UpperField, "is required for group events (it is the Klaviyo list id)");
        }
        return ListControls.Plan(view, options, listId, ListControls.Group, now);
    }
}

/// <summary>Where identify or group reads its list controls (spec 5): one rule of the mapping tables each.</summary>
internal sealed record ListControlRules(
    Func<MappingTables, SourceList> Subscribe,
    Func<MappingTables, SourceList> RemoveFromList,
    Func<MappingTables, SourceList> Consent,
    Func<MappingTables, SourceList> SmsConsent,
    Func<MappingTables, SourceList> ConsentedAt);

/// <summary>
/// The list controls identify and group share (spec 5): <c>subscribe</c>, <c>removeFromList</c>, consent, SMS consent
/// and the consent time, each the first present of its rule, else the setting; then the list part and the profile.
/// </summary>
internal static class ListControls
{
    public static readonly ListControlRules Identify = new(t => t.IdentifySubscribe, t => t.IdentifyRemoveFromList, t => t.IdentifyConsent, t => t.IdentifySmsConsent, t => t.IdentifyConsentedAt);

    public static readonly ListControlRules Group = new(t => t.GroupSubscribe, t => t.GroupRemoveFromList, t => t.GroupConsent, t => t.GroupSmsConsent, t => t.GroupConsentedAt);

    public static TransformResult Plan(EventView view, KlaviyoOptions options, string? listId, ListControlRules rules, DateTimeOffset now)
    {
        var tables = view.Mappings.Tables;
        var subscribeValue = rules.Subscribe(tables).First(view, out var subscribeField);
        if (JsonRead.Flag(subscribeValue, subscribeField, out var subscribe) is { } e1)
        {
            return e1;
        }
        var removeValue = rules.RemoveFromList(tables).First(view, out var removeField);
        if (JsonRead.Flag(removeValue, removeField, out var remove) is { } e2)
        {
            return e2;
        }
        if (remove == true && subscribe == true)
        {
            return new TransformResult.Invalid(removeField, "removeFromList and subscribe contradict each other");
        }
        var consentValue = rules.Consent(tables).First(view, out var consentField);
        if (ListMembership.ReadConsent(consentValue, consentField, out var consent) is { } e3)
        {
            return e3;
        }
        var smsValue = rules.SmsConsent(tables).First(view, out var smsField);
        if (JsonRead.Flag(smsValue, smsField, out var smsConsent) is { } e4)
        {
            return e4;
        }
        var consentedAtValue = rules.ConsentedAt(tables).First(view, out var consentedAtField);
        if (ConsentTime.Read(consentedAtValue, consentedAtField, now, out var consentedAt) is { } e5)
        {
            return e5;
        }
        ListPart? list = null;
        if (listId is not null)
        {
            var request = new ListRequest(subscribe, subscribeField, remove == true, consent ?? ListMembership.SettingsConsent(options), smsConsent ?? options.SmsConsent, consentedAt);
            if (ListMembership.Part(view, options, listId, request, out list) is { } e6)
            {
                return e6;
            }
        }
        else if (remove == true)
        {
            view.Warn($"{removeField} is true but the event names no list; nothing is removed");
        }
        return ProfileImport.Plan(view, options, list, now);
    }
}

/// <summary>The list controls of one event as read (spec 5).</summary>
internal readonly record struct ListRequest(bool? Subscribe, string SubscribeField, bool Remove, ConsentChannels Consent, bool SmsConsent, DateTime? ConsentedAt);

/// <summary><c>consentedAt</c> (spec 5): ISO-8601, after 1990 and not in the future.</summary>
internal static class ConsentTime
{
    public static TransformResult.Invalid? Read(JsonElement value, string field, DateTimeOffset now, out DateTime? utc)
    {
        utc = null;
        if (!value.IsPresent() || JsonRead.IsEmptyString(value))
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.String
            || !DateTimeOffset.TryParse(value.GetString(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var time))
        {
            return new TransformResult.Invalid(field, "must be an ISO-8601 date-time");
        }
        if (time < EventTime.Earliest)
        {
            return new TransformResult.Invalid(field, "must not be before 1990-01-01");
        }
        if (time > now)
        {
            return new TransformResult.Invalid(field, "must not be in the future (a consent time is when consent was given)");
        }
        utc = time.UtcDateTime;
        return null;
    }
}
