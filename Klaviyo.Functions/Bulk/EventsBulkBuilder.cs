using System.Text.Json;
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
/// Builds <c>EventsBulkCreateJob</c> bodies (spec 8.2): entries grouped per profile, at most 1,000 events and 5 MB
/// per call. Two pieces with the same <see cref="EventPiece.DedupeKey"/> become one event (Klaviyo would fail the
/// call, or keep only the first): the later piece is carried by the earlier one and shares its outcome.
/// </summary>
internal static class EventsBulkBuilder
{
    // JSON around the entries, an entry and an event; generous so the byte count never undershoots.
    private const int CallOverhead = 160;
    private const int EntryOverhead = 120;
    private const int EventOverhead = 48;

    private static readonly JsonEncodedText s_data = JsonEncodedText.Encode("data");
    private static readonly JsonEncodedText s_type = JsonEncodedText.Encode("type");
    private static readonly JsonEncodedText s_attributes = JsonEncodedText.Encode("attributes");

    public static IReadOnlyList<EventsBulkCall> Build(IReadOnlyList<EventPiece> pieces, int maxEvents = BulkLimits.MaxEventsPerCall, int maxBytes = BulkLimits.MaxBodyBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEvents, 1);

        // Groups per profile, in order of first appearance; duplicates folded into their first piece.
        var groups = new List<List<List<int>>>();
        var groupOf = new Dictionary<string, List<List<int>>>(StringComparer.Ordinal);
        var carrier = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (var i = 0; i < pieces.Count; i++)
        {
            if (carrier.TryGetValue(pieces[i].DedupeKey, out var first))
            {
                first.Add(i);
                continue;
            }
            var carried = new List<int> { i };
            carrier[pieces[i].DedupeKey] = carried;
            if (!groupOf.TryGetValue(pieces[i].ProfileKey, out var group))
            {
                group = [];
                groupOf[pieces[i].ProfileKey] = group;
                groups.Add(group);
            }
            group.Add(carried);
        }

        var calls = new List<EventsBulkCall>();
        var entries = new List<(int Profile, List<List<int>> Events)>();
        var events = 0;
        var bytes = CallOverhead;
        foreach (var group in groups)
        {
            var profile = group[0][0];
            List<List<int>>? entry = null;
            foreach (var carried in group)
            {
                var eventBytes = pieces[carried[0]].Attributes.Length + EventOverhead;
                var entryBytes = entry is null ? pieces[profile].Profile.Length + EntryOverhead : 0;
                if (events > 0 && (events + 1 > maxEvents || bytes + eventBytes + entryBytes > maxBytes))
                {
                    calls.Add(Write(pieces, entries));
                    entries = [];
                    events = 0;
                    bytes = CallOverhead;
                    entry = null;
                    entryBytes = pieces[profile].Profile.Length + EntryOverhead;
                }
                if (entry is null)
                {
                    entry = [];
                    entries.Add((profile, entry));
                }
                entry.Add(carried);
                events++;
                bytes += eventBytes + entryBytes;
            }
        }
        if (events > 0)
        {
            calls.Add(Write(pieces, entries));
        }
        return calls;
    }

    private static EventsBulkCall Write(IReadOnlyList<EventPiece> pieces, List<(int Profile, List<List<int>> Events)> entries)
    {
        var body = BulkJson.Write(w =>
        {
            w.WriteStartObject();
            w.WritePropertyName(s_data);
            w.WriteStartObject();
            w.WriteString(s_type, "event-bulk-create-job");
            w.WritePropertyName(s_attributes);
            w.WriteStartObject();
            w.WritePropertyName("events-bulk-create");
            w.WriteStartObject();
            w.WritePropertyName(s_data);
            w.WriteStartArray();
            foreach (var (profile, events) in entries)
            {
                w.WriteStartObject();
                w.WriteString(s_type, "event-bulk-create");
                w.WritePropertyName(s_attributes);
                w.WriteStartObject();
                w.WritePropertyName("profile");
                w.WriteStartObject();
                w.WritePropertyName(s_data);
                w.WriteRawValue(pieces[profile].Profile.Span, skipInputValidation: true);
                w.WriteEndObject();
                w.WritePropertyName("events");
                w.WriteStartObject();
                w.WritePropertyName(s_data);
                w.WriteStartArray();
                foreach (var carried in events)
                {
                    w.WriteStartObject();
                    w.WriteString(s_type, "event");
                    w.WritePropertyName(s_attributes);
                    w.WriteRawValue(pieces[carried[0]].Attributes.Span, skipInputValidation: true);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
        });
        var shape = entries.Select(e => (IReadOnlyList<IReadOnlyList<int>>)e.Events.Select(c => (IReadOnlyList<int>)c.ToArray()).ToArray()).ToArray();
        return new EventsBulkCall(new KlaviyoRequest(KlaviyoEndpoint.BulkCreateEvents, KlaviyoApi.BulkCreateEventsPath, body), shape);
    }
}
