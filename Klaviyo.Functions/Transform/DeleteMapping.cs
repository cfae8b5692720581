using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// delete (spec 5.7): Segment's shape (<c>userId</c>; <c>traits</c> / <c>context.traits</c> with <c>email</c> or
/// <c>phone</c>), read through the same identity sources as every other type (spec 4.1) plus the Klaviyo profile id of
/// <c>context.externalId</c>. <c>anonymousId</c> names no one Klaviyo can delete, so it is not an identifier here.
/// Whether deletions are switched on (<c>Privacy__DeleteEvents</c>) is the relay's decision, not the transform's: the
/// admin route's deletions go through whatever it says.
/// </summary>
internal static class DeleteMapping
{
    /// <summary>The field <c>POST /api/privacy/deletions</c> sets on the deletions it queues. A sender cannot set it:
    /// the ingest refuses an event carrying it, so <c>Privacy__DeleteEvents=false</c> cannot be walked around.</summary>
    public const string AdminRequestField = "adminRequest";

    public const string NoIdentifierRule = "a delete needs userId, email, an E.164 phone or a klaviyo-profileId in context.externalId";

    // Identity's sources, without EnforceEmailAsPrimary (a deletion sends no profile).
    private static readonly KlaviyoOptions s_identityOptions = new();

    public static TransformResult Map(JsonElement root, EventView view, TransformMode mode)
    {
        var admin = JsonRead.Get(root, "adminRequest"u8);
        if (admin.IsPresent() && mode == TransformMode.CheckBeforeIngestStamp)
        {
            return new TransformResult.Invalid(AdminRequestField, "is set only by the relay's POST /api/privacy/deletions route");
        }
        if (Identity.Resolve(view, s_identityOptions, out var identity) is { } error && error.Rule != Identity.NoIdentifierRule)
        {
            return error;
        }
        if (identity is not null && identity.Phone.IsAbsent && identity.UnusablePhone.ValueKind != JsonValueKind.Undefined)
        {
            // Deleting by a phone Klaviyo cannot match would report a deletion that never happened.
            return new TransformResult.Invalid(identity.UnusablePhoneField, "is not an E.164 phone number; a deletion by phone needs one");
        }
        var userId = identity?.UserId.IsPresent == true ? identity.UserId.ToString() : null;
        var email = identity?.Email.IsPresent == true ? identity.Email.ToString() : null;
        var phone = identity?.Phone.IsPresent == true ? identity.Phone.ToString() : null;
        var profileId = identity is null ? Identity.KlaviyoProfileIdOf(view) : identity.KlaviyoProfileId;
        if (userId is null && email is null && phone is null && profileId is null)
        {
            return new TransformResult.Invalid("userId", NoIdentifierRule);
        }
        if (mode != TransformMode.Build)
        {
            return TransformResult.Planned.Checked;
        }
        return new TransformResult.Planned(new DeletionParts(email, phone, userId, profileId, admin.ValueKind == JsonValueKind.True));
    }
}
