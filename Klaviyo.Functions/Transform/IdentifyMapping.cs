using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>identify (spec 5): profile-import, then subscribe to or add to the list when there is one.</summary>
internal static class IdentifyMapping
{
    public static TransformResult Map(EventView view, KlaviyoOptions options, DateTimeOffset now)
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
        return ListControls.Plan(view, options, listId, ListControls.Identify, now);
    }
}

/// <summary>The profile parts shared by identify and group: the profile (profile-import) and the optional list step.</summary>
internal static class ProfileImport
{
    public static TransformResult Plan(EventView view, KlaviyoOptions options, ListPart? list, DateTimeOffset now)
    {
        if (view.ValidateOnly)
        {
            return (TransformResult?)ProfileBuilder.Write(null, view, options, forEvent: false, out _) ?? TransformResult.Planned.Checked;
        }
        var writer = BodyBuffers.Body();
        if (ProfileBuilder.Write(writer, view, options, forEvent: false, out var identityEnd) is { } error)
        {
            return error;
        }
        var profile = new ProfilePart(BodyBuffers.ToArray(writer), identityEnd) { IdentityText = view.Identity.KeyText(forEvent: false) };
        // Several updates of one profile in a batch are merged oldest first (spec 8.3); a time that does not resolve
        // sorts first (a bad time is not an identify's permanent error).
        var time = EventTime.Resolve(view, now, out var utc) is null && utc is { } resolved ? resolved : DateTime.MinValue;
        return new TransformResult.Planned(new ProfileParts(profile, time, list, view.Warnings));
    }
}
