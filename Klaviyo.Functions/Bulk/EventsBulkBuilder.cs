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
/// later one is carried by the earlier one and shares its outcome.
/// </summary>
internal static class EventsBulkBuilder
{
    // JSON around the entries, an entry and an event; generous so the byte count never undershoots.
    private const int CallOverhead = 160;
    private const int EntryOverhead = 120;
    private const int EventOverhead = 48;

    public static IReadOnlyList<EventsBulkCall> Build(IReadOnlyList<EventPart> events, int maxEvents = BulkLimits.MaxEventsPerCall, int maxBytes = BulkLimits.MaxBodyBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEvents, 1);

        // Groups per profile (the same profile object, byte for byte), in order of first appearance; duplicates folded
        // into their first event.
        var groups = new List<List<List<int>>>();
        var groupOf = new Dictionary<ByteKey, List<List<int>>>();
        var carrier = new Dictionary<ByteKey, List<int>>();
        for (var i = 0; i < events.Count; i++)
        {
            var dedupe = new ByteKey(events[i].Profile.IdentityKey, events[i].DedupeAttributes);
            if (carrier.TryGetValue(dedupe, out var first))
            {
                first.Add(i);
                continue;
            }
            var carried = new List<int> { i };
            carrier[dedupe] = carried;
            var profileKey = new ByteKey(events[i].Profile.Data);
            if (!groupOf.TryGetValue(profileKey, out var group))
            {
                group = [];
                groupOf[profileKey] = group;
                groups.Add(group);
            }
            group.Add(carried);
        }

        var calls = new List<EventsBulkCall>();
        var entries = new List<(int Profile, List<List<int>> Events)>();
        var count = 0;
        var bytes = CallOverhead;
        foreach (var group in groups)
        {
            var profile = group[0][0];
            List<List<int>>? entry = null;
            foreach (var carried in group)
            {
                var eventBytes = events[carried[0]].Attributes.Length + EventOverhead;
                var entryBytes = entry is null ? events[profile].Profile.Data.Length + EntryOverhead : 0;
                if (count > 0 && (count + 1 > maxEvents || bytes + eventBytes + entryBytes > maxBytes))
                {
                    calls.Add(Write(events, entries));
                    entries = [];
                    count = 0;
                    bytes = CallOverhead;
                    entry = null;
                    entryBytes = events[profile].Profile.Data.Length + EntryOverhead;
                }
                if (entry is null)
                {
                    entry = [];
                    entries.Add((profile, entry));
                }
                entry.Add(carried);
                count++;
                bytes += eventBytes + entryBytes;
            }
        }
        if (count > 0)
        {
            calls.Add(Write(events, entries));
        }
        return calls;
    }

    private static EventsBulkCall Write(IReadOnlyList<EventPart> events, List<(int Profile, List<List<int>> Events)> entries)
    {
        var request = KlaviyoCalls.EventBulkJob(entries
            .Select(e => (events[e.Profile].Profile, (IReadOnlyList<EventPart>)e.Events.Select(c => events[c[0]]).ToArray()))
            .ToArray());
        var shape = entries.Select(e => (IReadOnlyList<IReadOnlyList<int>>)e.Events.Select(c => (IReadOnlyList<int>)c.ToArray()).ToArray()).ToArray();
        return new EventsBulkCall(request, shape);
    }
}
