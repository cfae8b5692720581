using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// group (spec 5): the list is <c>groupId</c>. Profile-import (identity per spec 4.1, attributes from
/// <c>context.traits</c>), then subscribe when
/// <c>traits.subscribe == true</c>, else add to the list. Consent and SMS consent: traits, then context.traits, then settings.
/// </summary>
internal static class GroupMapping
{
    public static TransformResult Map(EventView view, KlaviyoOptions options, DateTimeOffset now)
    {
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
        return ListControls.Plan(view, options, listId, tables.GroupSubscribe, tables.GroupConsent, tables.GroupSmsConsent, now);
    }
}

/// <summary>
/// The list controls identify and group share (spec 5): <c>subscribe</c>, consent and SMS consent, each the first
/// present of its rule, else the setting; then profile-import and the list step.
/// </summary>
internal static class ListControls
{
    public static TransformResult Plan(EventView view, KlaviyoOptions options, string? listId, SourceList subscribeRule, SourceList consentRule, SourceList smsRule, DateTimeOffset now)
    {
        var subscribeValue = subscribeRule.First(view, out var subscribeField);
        if (JsonRead.Flag(subscribeValue, subscribeField, out var subscribe) is { } e1)
        {
            return e1;
        }
        var consentValue = consentRule.First(view, out var consentField);
        if (ListMembership.ReadConsent(consentValue, consentField, out var consent) is { } e2)
        {
            return e2;
        }
        var smsValue = smsRule.First(view, out var smsField);
        if (JsonRead.Flag(smsValue, smsField, out var smsConsent) is { } e3)
        {
            return e3;
        }
        return ProfileImport.Plan(view, options, listId, subscribe == true, consent ?? ListMembership.SettingsConsent(options), smsConsent ?? options.SmsConsent, now);
    }
}
