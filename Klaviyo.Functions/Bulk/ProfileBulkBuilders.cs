using Klaviyo.Functions.Calls;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Bulk;

/// <summary>A bulk call and, per item of its body (a profile, a subscription), the batch messages that item carries.</summary>
/// <param name="ItemIdentities">For an import job, each profile item's identifiers as text (<see cref="ProfilePart.IdentityText"/>).</param>
internal sealed record CarriedCall(KlaviyoRequest Request, IReadOnlyList<IReadOnlyList<int>> ItemMessages, IReadOnlyList<string?>? ItemIdentities = null)
{
    public IEnumerable<int> Messages => ItemMessages.SelectMany(m => m);
}

internal sealed record BulkCall(KlaviyoRequest Request, IReadOnlyList<int> Items);

/// <summary>
/// <c>POST /api/profile-bulk-import-jobs</c> calls (<c>ProfileImportJobCreateQuery</c>, spec 8.3): one job per
/// target list (its <c>relationships.lists</c> adds every profile to the list, replacing the per-profile list call),
/// at most 10,000 profiles and 5 MB per job. The caller merges several updates of one profile first, so a job never
/// carries a profile twice; <see cref="BulkCall.Items"/>[k] is the item at <c>profiles.data[k]</c>.
/// </summary>
internal static class ProfileImportJobBuilder
{
    private const int CallOverhead = 200;
    private const int ItemOverhead = 2;

    public static IReadOnlyList<BulkCall> Build(string? listId, IReadOnlyList<ProfilePart> profiles,
        int maxProfiles = BulkLimits.MaxProfilesPerImportJob, int maxBytes = BulkLimits.MaxBodyBytes) =>
        Chunk(profiles.Count, i => profiles[i].Data.Length + ItemOverhead, CallOverhead + (listId?.Length ?? 0), maxProfiles, maxBytes)
            .Select(items => new BulkCall(KlaviyoCalls.ProfileImportJob(listId, items.Select(i => profiles[i]).ToList()), items))
            .ToList();

    /// <summary>Consecutive runs of items within a count and a byte budget; an item alone always fits.</summary>
    internal static List<int[]> Chunk(int count, Func<int, int> size, int overhead, int maxItems, int maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxItems, 1);
        var chunks = new List<int[]>();
        var current = new List<int>();
        var bytes = overhead;
        for (var i = 0; i < count; i++)
        {
            var itemBytes = size(i);
            if (current.Count > 0 && (current.Count + 1 > maxItems || bytes + itemBytes > maxBytes))
            {
                chunks.Add([.. current]);
                current.Clear();
                bytes = overhead;
            }
            current.Add(i);
            bytes += itemBytes;
        }
        if (current.Count > 0)
        {
            chunks.Add([.. current]);
        }
        return chunks;
    }
}

/// <summary>
/// <c>POST /api/profile-subscription-bulk-create-jobs</c> bodies (<c>SubscriptionCreateJobCreateQuery</c>, spec 8.3):
/// one list per call, at most 1,000 profiles, each with its own channels, no profile ids needed; and their opposite,
/// <c>POST /api/profile-subscription-bulk-delete-jobs</c> (<c>SubscriptionDeleteJobCreateQuery</c>), at most 100.
/// The caller groups subscribers that share a call's job-level attributes (<see cref="KlaviyoCalls.SubscriptionKey"/>).
/// </summary>
internal static class SubscriptionBulkBuilder
{
    // A subscriber's item: its email, phone and channels, well under this.
    private const int SubscriberBytes = 200;

    public static IReadOnlyList<BulkCall> Build(string listId, IReadOnlyList<SubscriberPart> subscribers,
        int maxProfiles = BulkLimits.MaxProfilesPerSubscriptionJob, int maxBytes = BulkLimits.MaxBodyBytes) =>
        Pack(listId, subscribers, maxProfiles, maxBytes, chunk => KlaviyoCalls.Subscribe(listId, chunk));

    public static IReadOnlyList<BulkCall> BuildUnsubscribe(string listId, IReadOnlyList<SubscriberPart> subscribers,
        int maxProfiles = BulkLimits.MaxProfilesPerUnsubscribeJob, int maxBytes = BulkLimits.MaxBodyBytes) =>
        Pack(listId, subscribers, maxProfiles, maxBytes, chunk => KlaviyoCalls.Unsubscribe(listId, chunk));

    private static List<BulkCall> Pack(string listId, IReadOnlyList<SubscriberPart> subscribers, int maxProfiles, int maxBytes, Func<IReadOnlyList<SubscriberPart>, KlaviyoRequest> write) =>
        ProfileImportJobBuilder.Chunk(subscribers.Count, i => SubscriberBytes + (subscribers[i].Email?.Length ?? 0) + (subscribers[i].Phone?.Length ?? 0), 240 + listId.Length, maxProfiles, maxBytes)
            .Select(items => new BulkCall(write(items.Select(i => subscribers[i]).ToList()), items))
            .ToList();
}

/// <summary>
/// <c>POST</c> and <c>DELETE /api/lists/{id}/relationships/profiles</c> bodies (<c>ListMembersAddQuery</c>,
/// <c>ListMembersDeleteQuery</c>, spec 8.3): the additions (or removals) of one list grouped, at most 1,000 profile ids
/// per call. <see cref="BulkCall.Items"/> are indices into
/// the ids given; a repeated id is sent once and both items are carried by that call.
/// </summary>
internal static class ListMembersBuilder
{
    public static IReadOnlyList<BulkCall> Build(string listId, IReadOnlyList<string> profileIds, int maxIds = BulkLimits.MaxIdsPerListCall, bool remove = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxIds, 1);
        var firstOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var distinct = new List<string>();
        var carriedBy = new List<List<int>>();
        for (var i = 0; i < profileIds.Count; i++)
        {
            if (firstOf.TryGetValue(profileIds[i], out var at))
            {
                carriedBy[at].Add(i);
                continue;
            }
            firstOf[profileIds[i]] = distinct.Count;
            distinct.Add(profileIds[i]);
            carriedBy.Add([i]);
        }
        var calls = new List<BulkCall>();
        for (var start = 0; start < distinct.Count; start += maxIds)
        {
            var ids = distinct.Skip(start).Take(maxIds).ToList();
            var items = carriedBy.Skip(start).Take(maxIds).SelectMany(c => c).ToArray();
            calls.Add(new BulkCall(remove ? KlaviyoCalls.RemoveFromList(listId, ids) : KlaviyoCalls.AddToList(listId, ids), items));
        }
        return calls;
    }
}
