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
    public static TransformResult Map(EventView view, KlaviyoOptions options)
    {
        var groupId = JsonRead.Get(view.Root, "groupId"u8);
        var error = ListMembership.ReadListId(groupId, "groupId", out var listId);
        if (error is not null)
        {
            return error;
        }
        if (listId is null)
        {
            return new TransformResult.Invalid("groupId", "is required for group events (it is the Klaviyo list id)");
        }

        if (JsonRead.Flag(JsonRead.Get(view.Traits, "subscribe"u8), "traits.subscribe", out var subscribe) is { } e1)
        {
            return e1;
        }
        if (ReadConsent(view, out var consent) is { } e2)
        {
            return e2;
        }
        if (ReadSmsConsent(view, out var smsConsent) is { } e3)
        {
            return e3;
        }
        return ProfileImport.Plan(view, options, listId, subscribe == true, consent ?? ListMembership.SettingsConsent(options), smsConsent ?? options.SmsConsent);
    }

    private static TransformResult.Invalid? ReadConsent(EventView view, out ConsentChannels? consent)
    {
        var error = ListMembership.ReadConsent(JsonRead.Get(view.Traits, "consent"u8), "traits.consent", out consent);
        if (error is null && consent is null)
        {
            error = ListMembership.ReadConsent(JsonRead.Get(view.ContextTraits, "consent"u8), "context.traits.consent", out consent);
        }
        return error;
    }

    private static TransformResult.Invalid? ReadSmsConsent(EventView view, out bool? smsConsent)
    {
        var error = JsonRead.Flag(JsonRead.Get(view.Traits, "smsConsent"u8), "traits.smsConsent", out smsConsent);
        if (error is null && smsConsent is null)
        {
            error = JsonRead.Flag(JsonRead.Get(view.ContextTraits, "smsConsent"u8), "context.traits.smsConsent", out smsConsent);
        }
        return error;
    }
}
