using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>identify (spec 5): profile-import, then subscribe to or add to the list when there is one.</summary>
internal static class IdentifyMapping
{
    public static TransformResult Map(EventView view, KlaviyoOptions options)
    {
        var error = ListMembership.ReadListId(options, view.Control("listId"u8, "traits.properties.listId", "context.traits.properties.listId", out var listIdField), listIdField, out var listId);
        if (error is null && listId is null)
        {
            error = ListMembership.ReadListId(options, JsonRead.Get(view.Properties, "listId"u8), "properties.listId", out listId);
        }
        listId ??= string.IsNullOrEmpty(options.ListId) ? null : options.ListId;
        if (error is not null)
        {
            return error;
        }
        if (JsonRead.Flag(view.Control("subscribe"u8, "traits.properties.subscribe", "context.traits.properties.subscribe", out var subscribeField), subscribeField, out var subscribe) is { } e1)
        {
            return e1;
        }
        if (ListMembership.ReadConsent(view.Control("consent"u8, "traits.properties.consent", "context.traits.properties.consent", out var consentField), consentField, out var consent) is { } e2)
        {
            return e2;
        }
        if (JsonRead.Flag(view.Control("smsConsent"u8, "traits.properties.smsConsent", "context.traits.properties.smsConsent", out var smsField), smsField, out var smsConsent) is { } e3)
        {
            return e3;
        }

        return ProfileImport.Plan(view, options, listId, subscribe == true, consent ?? ListMembership.SettingsConsent(options), smsConsent ?? options.SmsConsent);
    }
}

/// <summary>The profile-import step shared by identify and group, followed by the optional list step.</summary>
internal static class ProfileImport
{
    private static readonly JsonEncodedText s_data = JsonEncodedText.Encode("data");

    public static TransformResult Plan(EventView view, KlaviyoOptions options, string? listId, bool subscribe, ConsentChannels consent, bool smsConsent)
    {
        var writer = BodyBuffers.Body();
        writer.WriteStartObject();
        writer.WritePropertyName(s_data);
        if (ProfileBuilder.Write(writer, view, options, forEvent: false) is { } error)
        {
            return error;
        }
        writer.WriteEndObject();
        var import = new KlaviyoRequest(KlaviyoEndpoint.ProfileImport, KlaviyoApi.ProfileImportPath, BodyBuffers.ToArray(writer));

        if (listId is null)
        {
            return new TransformResult.Planned(new RequestPlan([PlanStep.Fixed(import, yieldsProfileId: true)], view.Warnings));
        }
        var list = ListMembership.Step(view, listId, subscribe, consent, smsConsent);
        return new TransformResult.Planned(new RequestPlan([PlanStep.Fixed(import, yieldsProfileId: true), list], view.Warnings));
    }
}
