using Klaviyo.Functions.Calls;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Bulk;

/// <summary>
/// One <c>POST /api/event-bulk-create-jobs</c> call. <see cref="Entries"/>[i][j] lists the pieces (indices into the
/// builder's input) carried by event j of entry i: the same <c>i</c> Klaviyo's <c>source.pointer</c>
/// <c>/data/attributes/events-bulk-create/data/&lt;i&gt;/…</c> names.
/// </summary>
internal sealed record EventsBulkCall(KlaviyoRequest Request, IReadOnlyList<IReadOnlyList<IReadOnlyList<int>>> Entries)
{
    /// <summary>Every piece the call carries.</summary>
    public IEnumerable<int> Pieces => Entries.SelectMany(e => e.SelectMany(p => p));

    public int EventCount => Entries.Sum(e => e.Count);
}

/// <summary>
/// Packs events into <c>EventsBulkCreateJob</c> calls (spec 8.2): entries grouped per profile, at most 1,000 events
/// and 5 MB per call; <see cref="KlaviyoCalls.EventBulkJob"/> writes them. Two events with the same identity, metric and
/// unique_id (or time when there is none) become one event (Klaviyo would fail the call, or keep only the first): the
/// later one is carried by the earlier one and shares its outcome. The events of one message (an order's Placed Order
/// and Ordered Products, spec 8.3) are never split: a message that does not fit the room left in a call starts the next.
/// </summary>
internal static class EventsBulkBuilder
{
    // JSON around the entries, an entry and an event; generous so the byte count never undershoots.
    private const int CallOverhead = 160;
    private const int EntryOverhead = 120;
    private const int EventOverhead = 48;

    /// <summary>One event per piece: a piece index is an index into <paramref name="events"/>.</summary>
    public static IReadOnlyList<EventsBulkCall> Build(IReadOnlyList<EventPart> events, int maxEvents = BulkLimits.MaxEventsPerCall, int maxBytes = BulkLimits.MaxBodyBytes) =>
        BuildMessages(events.Select(e => (IReadOnlyList<EventPart>)[e]).ToList(), maxEvents, maxBytes);

    /// <summary>The events of each message together: a piece index is an index into <paramref name="messages"/>, and all
    /// of a message's events go into one call.</summary>
    public static IReadOnlyList<EventsBulkCall> BuildMessages(IReadOnlyList<IReadOnlyList<EventPart>> messages, int maxEvents = BulkLimits.MaxEventsPerCall, int maxBytes = BulkLimits.MaxBodyBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEvents, 1);

        // Distinct events ("carriers"), duplicates folded into the first; messages that share a carrier are bound
        // together (one call carries the event both depend on).
        var carriers = new List<Carrier>();
        var carrierOf = new Dictionary<ByteKey, int>();
        var groupOf = new Dictionary<ByteKey, int>();
        var bound = new int[messages.Count];
        for (var m = 0; m < messages.Count; m++)
        {
            bound[m] = m;
            foreach (var @event in messages[m])
            {
                var dedupe = new ByteKey(@event.Profile.IdentityKey, @event.DedupeAttributes);
                if (carrierOf.TryGetValue(dedupe, out var existing))
                {
                    if (!carriers[existing].Pieces.Contains(m))
                    {
                        carriers[existing].Pieces.Add(m);
                    }
                    Union(bound, carriers[existing].Pieces[0], m);
                    continue;
                }
                var profileKey = new ByteKey(@event.Profile.Data);
                if (!groupOf.TryGetValue(profileKey, out var group))
                {
                    group = groupOf.Count;
                    groupOf[profileKey] = group;
                }
                carrierOf[dedupe] = carriers.Count;
                carriers.Add(new Carrier(@event, group, profileKey, [m]));
            }
        }

        // Bundles (messages bound together, with their carriers) in order of their first event's profile group, then
        // of that event: for one event per message, the per-profile order of the entries.
        var bundles = carriers.Select((c, i) => (Root: Find(bound, c.Pieces[0]), Index: i))
            .GroupBy(c => c.Root)
            .Select(g => g.Select(c => c.Index).ToList())
            .OrderBy(b => carriers[b[0]].Group).ThenBy(b => b[0])
            .ToList();

        var calls = new List<EventsBulkCall>();
        var entries = new List<(ProfilePart Profile, List<Carrier> Events)>();
        var entryOf = new Dictionary<ByteKey, int>();
        var count = 0;
        var bytes = CallOverhead;
        foreach (var bundle in bundles)
        {
            var bundleBytes = BundleBytes(carriers, bundle, entryOf);
            if (count > 0 && (count + bundle.Count > maxEvents || bytes + bundleBytes > maxBytes))
            {
                calls.Add(Write(entries));
                entries = [];
                entryOf.Clear();
                count = 0;
                bytes = CallOverhead;
                bundleBytes = BundleBytes(carriers, bundle, entryOf);
            }
            foreach (var index in bundle)
            {
                var carrier = carriers[index];
                if (!entryOf.TryGetValue(carrier.ProfileKey, out var entry))
                {
                    entry = entries.Count;
                    entryOf[carrier.ProfileKey] = entry;
                    entries.Add((carrier.Event.Profile, []));
                }
                entries[entry].Events.Add(carrier);
            }
            count += bundle.Count;
            bytes += bundleBytes;
        }
        if (count > 0)
        {
            calls.Add(Write(entries));
        }
        return calls;
    }

    // The bytes a bundle adds to a call: its events, and an entry for each profile the call does not have yet.
    private static int BundleBytes(List<Carrier> carriers, List<int> bundle, Dictionary<ByteKey, int> entryOf)
    {
        var bytes = 0;
        HashSet<ByteKey>? newProfiles = null;
        foreach (var index in bundle)
        {
            var carrier = carriers[index];
            bytes += carrier.Event.Attributes.Length + EventOverhead;
            if (!entryOf.ContainsKey(carrier.ProfileKey) && (newProfiles ??= []).Add(carrier.ProfileKey))
            {
                bytes += carrier.Event.Profile.Data.Length + EntryOverhead;
            }
        }
        return bytes;
    }

    private static EventsBulkCall Write(List<(ProfilePart Profile, List<Carrier> Events)> entries)
    {
        var request = KlaviyoCalls.EventBulkJob(entries
            .Select(e => (e.Profile, (IReadOnlyList<EventPart>)e.Events.Select(c => c.Event).ToArray()))
            .ToArray());
        var shape = entries.Select(e => (IReadOnlyList<IReadOnlyList<int>>)e.Events.Select(c => (IReadOnlyList<int>)c.Pieces.ToArray()).ToArray()).ToArray();
        return new EventsBulkCall(request, shape);
    }

    private static int Find(int[] bound, int m)
    {
        while (bound[m] != m)
        {
            bound[m] = bound[bound[m]];
            m = bound[m];
        }
        return m;
    }

    private static void Union(int[] bound, int a, int b)
    {
        var (ra, rb) = (Find(bound, a), Find(bound, b));
        if (ra != rb)
        {
            bound[Math.Max(ra, rb)] = Math.Min(ra, rb);
        }
    }

    /// <summary>One distinct event, its profile group, and the pieces (messages) it carries, first the one it came from.</summary>
    private sealed record Carrier(EventPart Event, int Group, ByteKey ProfileKey, List<int> Pieces);
}
