using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>identify (spec 5): profile-import, then subscribe to or add to the list when there is one.</summary>
internal static class IdentifyMapping
{
    public static TransformResult Map(EventView view, KlaviyoOptions options)
    {
        var tables = view.Mappings.Tables;
        // listId: the first source that names a list (an empty string names none), else the ListId setting.
        string? listId = null;
        foreach (var candidate in tables.IdentifyListId.In(view))
        {
            if (ListMembership.ReadListId(options, candidate.Value, candidate.Field, out listId) is { } error)
            {
                return error;
            }
            if (listId is not null)
            {
                break;
            }
        }
        listId ??= string.IsNullOrEmpty(options.ListId) ? null : options.ListId;
        return ListControls.Plan(view, options, listId, tables.IdentifySubscribe, tables.IdentifyConsent, tables.IdentifySmsConsent);
    }
}

/// <summary>The profile-import step shared by identify and group, followed by the optional list step.</summary>
internal static class ProfileImport
{
    private static readonly JsonEncodedText s_data = JsonEncodedText.Encode("data");

    public static TransformResult Plan(EventView view, KlaviyoOptions options, string? listId, bool subscribe, ConsentChannels consent, bool smsConsent)
    {
        if (view.ValidateOnly)
        {
            return (TransformResult?)ProfileBuilder.Write(null, view, options, forEvent: false) ?? TransformResult.Planned.Checked;
        }
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
