using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Options;
using Klaviyo.Functions.Bulk;

namespace Klaviyo.Functions.Relay;

/// <summary>One queue message of a batch: its messageId, body (the event as UTF-8 JSON) and 1-based attempt.</summary>
internal sealed record BatchMessage(string MessageId, ReadOnlyMemory<byte> Body, int Attempt);

/// <summary>A message sent on its own (below <c>Relay__BulkThreshold</c>): its plan as the single-call relay runs it.</summary>
internal sealed record SingleDelivery(int Message, RequestPlan Plan);

/// <summary>
/// What to do with a batch (spec 8): the outcomes decided without Klaviyo, the single deliveries, and the bulk calls
/// with the messages each carries. Message indices are positions in the batch. A message repeated by messageId is
/// planned once; <see cref="SameAs"/> points every repeat at the message whose outcome it takes.
/// </summary>
internal sealed class BatchPlan
{
    public required IReadOnlyList<int> SameAs { get; init; }

    /// <summary>Skipped, <c>InvalidEvent</c> and <c>MalformedMessage</c>: decided by the transform alone.</summary>
    public required IReadOnlyDictionary<int, RelayOutcome> Decided { get; init; }

    public required IReadOnlyList<SingleDelivery> Singles { get; init; }

    /// <summary>Event bulk calls; a piece index of <see cref="EventsBulkCall.Entries"/> is a message index.</summary>
    public required IReadOnlyList<EventsBulkCall> EventCalls { get; init; }

    /// <summary>The event of each message in <see cref="EventCalls"/>, by message index (to resend or send singly).</summary>
    public required IReadOnlyDictionary<int, EventPiece> EventPieces { get; init; }

    /// <summary>Profile import jobs: item k is <c>profiles.data[k]</c>, one merged profile.</summary>
    public required IReadOnlyList<CarriedCall> ImportJobs { get; init; }

    /// <summary>Subscription jobs, one list each: item k is <c>profiles.data[k]</c>.</summary>
    public required IReadOnlyList<CarriedCall> Subscriptions { get; init; }

    /// <summary>The transform's warnings (e.g. a phone kept as a property) of messages sent in bulk calls, by message
    /// index; a single delivery reports its own when its plan runs.</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<string>> BulkWarnings { get; init; } = new Dictionary<int, IReadOnlyList<string>>();

    /// <summary>Messages whose planning failed on a bug in the relay's own code: each goes the single path on its own.</summary>
    public IReadOnlyList<int> Failed { get; init; } = [];

    /// <summary>Every message of the batch that is planned (not a repeat): decided, single, or in a bulk call.</summary>
    public IEnumerable<int> Planned => Enumerable.Range(0, SameAs.Count).Where(i => SameAs[i] == i);
}

/// <summary>
/// Decides, for a whole batch and without I/O, which Klaviyo calls deliver it (spec 8.1–8.3). Pure: each message is
/// transformed on its own, so a bad message only ever gets its own outcome; <c>Relay__BulkThreshold</c> decides single
/// or bulk per kind (events; profiles).
/// </summary>
internal sealed class BatchPlanner(KlaviyoTransformer transformer, IOptions<RelayOptions> options)
{
    /// <param name="bulkProfiles">False sends profiles one by one whatever their number (while import jobs cannot
    /// yet be waited for across invocations).</param>
    public BatchPlan Plan(IReadOnlyList<BatchMessage> batch, bool bulkProfiles = true)
    {
        var sameAs = new int[batch.Count];
        var firstById = new Dictionary<string, int>(StringComparer.Ordinal);
        var decided = new Dictionary<int, RelayOutcome>();
        var events = new List<(int Message, RequestPlan Plan, EventPiece Piece)>();
        var profiles = new List<ProfileMessage>();
        var singles = new List<SingleDelivery>();
        var failed = new List<int>();
        var now = transformer.TimeProvider.GetUtcNow();

        for (var i = 0; i < batch.Count; i++)
        {
            if (firstById.TryGetValue(batch[i].MessageId, out var first))
            {
                sameAs[i] = first;
                continue;
            }
            firstById[batch[i].MessageId] = i;
            sameAs[i] = i;
            try
            {
                switch (transformer.Transform(batch[i].Body.Span))
                {
                    case TransformResult.Skipped skipped:
                        decided[i] = new RelayOutcome.Skipped(skipped.Reason);
                        break;
                    case TransformResult.Invalid invalid:
                        decided[i] = new RelayOutcome.DeadLetter(DeadLetterReason.InvalidEvent, invalid.Message);
                        break;
                    case TransformResult.Malformed malformed:
                        decided[i] = new RelayOutcome.DeadLetter(DeadLetterReason.MalformedMessage, malformed.Reason);
                        break;
                    case TransformResult.Planned { Plan.Steps: [{ Endpoint: KlaviyoEndpoint.CreateEvent }] } planned:
                        events.Add((i, planned.Plan, EventPiece.FromCreateEvent(planned.Plan.Steps[0].Build())));
                        break;
                    case TransformResult.Planned { Plan.Steps: [{ Endpoint: KlaviyoEndpoint.ProfileImport }, ..] } planned:
                        profiles.Add(new ProfileMessage(
                            i, planned.Plan, ProfilePiece.FromProfileImport(planned.Plan.Steps[0].Build()),
                            planned.Plan.Steps.Count > 1 ? ListTarget.FromStep(planned.Plan.Steps[1]) : null,
                            EventTimeOf(batch[i].Body, now)));
                        break;
                    case TransformResult.Planned planned:
                        singles.Add(new SingleDelivery(i, planned.Plan));
                        break;
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // A bug planning this message must not fail the batch: it goes the single path, which reports it.
                failed.Add(i);
            }
        }

        var threshold = options.Value.BulkThreshold;
        IReadOnlyList<EventsBulkCall> eventCalls = [];
        var eventPieces = new Dictionary<int, EventPiece>();
        var bulkWarnings = new Dictionary<int, IReadOnlyList<string>>();
        if (events.Count >= threshold)
        {
            events.Where(e => e.Plan.Warnings.Count > 0).ToList().ForEach(e => bulkWarnings[e.Message] = e.Plan.Warnings);
            var pieces = events.Select(e => e.Piece).ToList();
            for (var p = 0; p < pieces.Count; p++)
            {
                eventPieces[events[p].Message] = pieces[p];
            }
            // Piece indices become message indices, so a call's entries name the messages they carry.
            eventCalls = EventsBulkBuilder.Build(pieces)
                .Select(c => c with { Entries = c.Entries.Select(entry => (IReadOnlyList<IReadOnlyList<int>>)entry.Select(ev => (IReadOnlyList<int>)ev.Select(p => events[p].Message).ToArray()).ToArray()).ToArray() })
                .ToList();
        }
        else
        {
            singles.AddRange(events.Select(e => new SingleDelivery(e.Message, e.Plan)));
        }

        IReadOnlyList<CarriedCall> importJobs = [];
        IReadOnlyList<CarriedCall> subscriptions = [];
        if (bulkProfiles && profiles.Count >= threshold)
        {
            profiles.Where(p => p.Plan.Warnings.Count > 0).ToList().ForEach(p => bulkWarnings[p.Message] = p.Plan.Warnings);
            (importJobs, subscriptions) = PlanProfiles(profiles);
        }
        else
        {
            singles.AddRange(profiles.Select(p => new SingleDelivery(p.Message, p.Plan)));
        }

        return new BatchPlan
        {
            SameAs = sameAs,
            Decided = decided,
            Singles = singles.OrderBy(s => s.Message).ToList(),
            EventCalls = eventCalls,
            EventPieces = eventPieces,
            ImportJobs = importJobs,
            Subscriptions = subscriptions,
            Failed = failed,
            BulkWarnings = bulkWarnings,
        };
    }

    private sealed record ProfileMessage(int Message, RequestPlan Plan, ProfilePiece Piece, ListTarget? Target, DateTime Time);

    private static (IReadOnlyList<CarriedCall> Imports, IReadOnlyList<CarriedCall> Subscriptions) PlanProfiles(List<ProfileMessage> profiles)
    {
        // One entry per target list (add-to-list; none for no list or a subscription) and profile.
        var entries = new Dictionary<(string List, string Identity), List<(DateTime Time, int Message, ProfilePiece Piece)>>();
        var entryOrder = new List<(string List, string Identity)>();
        var subscriptionsByList = new Dictionary<string, List<(int Message, ReadOnlyMemory<byte> Profile)>>(StringComparer.Ordinal);
        foreach (var (message, _, piece, target, time) in profiles)
        {
            var key = (target is { Subscribes: false } ? target.ListId : "", piece.IdentityKey);
            if (!entries.TryGetValue(key, out var updates))
            {
                updates = [];
                entries[key] = updates;
                entryOrder.Add(key);
            }
            updates.Add((time, message, piece));
            if (target is { Subscription: { } subscription })
            {
                if (!subscriptionsByList.TryGetValue(target.ListId, out var list))
                {
                    list = [];
                    subscriptionsByList[target.ListId] = list;
                }
                list.Add((message, subscription));
            }
        }

        var imports = new List<CarriedCall>();
        foreach (var listGroup in entryOrder.GroupBy(k => k.List))
        {
            var merged = new List<ProfilePiece>();
            var carried = new List<IReadOnlyList<int>>();
            foreach (var key in listGroup)
            {
                var ordered = entries[key].OrderBy(u => u.Time).ThenBy(u => u.Message).ToList();
                merged.Add(ProfilePiece.Merge(ordered.Select(u => u.Piece).ToList()));
                carried.Add(ordered.Select(u => u.Message).Order().ToArray());
            }
            foreach (var call in ProfileImportJobBuilder.Build(listGroup.Key.Length == 0 ? null : listGroup.Key, merged))
            {
                imports.Add(new CarriedCall(call.Request, call.Items.Select(i => carried[i]).ToArray()));
            }
        }

        var subscriptions = new List<CarriedCall>();
        foreach (var (listId, items) in subscriptionsByList)
        {
            foreach (var call in SubscriptionBulkBuilder.Build(listId, items.Select(i => i.Profile).ToList()))
            {
                subscriptions.Add(new CarriedCall(call.Request, call.Items.Select(i => (IReadOnlyList<int>)[items[i].Message]).ToArray()));
            }
        }
        return (imports, subscriptions);
    }

    // The event's time (timestamp ?? originalTimestamp ?? receivedAt); the transform already refused a bad one.
    private static DateTime EventTimeOf(ReadOnlyMemory<byte> body, DateTimeOffset now)
    {
        using var document = JsonDocument.Parse(body);
        var root = document.RootElement;
        if (!root.TryGetProperty("type"u8, out var typeValue) || !global::Klaviyo.Functions.Events.EventTypes.TryParse(typeValue, out var type)
            || EventView.Create(root, type, Mappings.Default, TransformMode.Check, out var view) is not null || view is null)
        {
            return DateTime.MinValue;
        }
        try
        {
            return EventTime.Resolve(view, now, out var utc) is null && utc is { } time ? time : DateTime.MinValue;
        }
        finally
        {
            EventView.Release();
        }
    }
}
