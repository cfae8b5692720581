using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Options;
using Klaviyo.Functions.Bulk;

namespace Klaviyo.Functions.Relay;

/// <summary>One queue message of a batch: its messageId, body (the event as UTF-8 JSON) and 1-based attempt.</summary>
internal sealed record BatchMessage(string MessageId, ReadOnlyMemory<byte> Body, int Attempt);

/// <summary>A message sent on its own (below <c>Relay__BulkThreshold</c>): its parts, for its single calls.</summary>
internal sealed record SingleDelivery(int Message, DeliveryParts Parts);

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

    /// <summary>The parts of each message in a bulk call, by message index (to resend it or send it singly).</summary>
    public required IReadOnlyDictionary<int, DeliveryParts> BulkParts { get; init; }

    /// <summary>Profile import jobs: item k is <c>profiles.data[k]</c>, one merged profile.</summary>
    public required IReadOnlyList<CarriedCall> ImportJobs { get; init; }

    /// <summary>Subscription jobs, one list each: item k is <c>profiles.data[k]</c>.</summary>
    public required IReadOnlyList<CarriedCall> Subscriptions { get; init; }

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
        var events = new List<(int Message, EventParts Parts)>();
        var profiles = new List<(int Message, ProfileParts Parts)>();
        var failed = new List<int>();

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
                    case TransformResult.Planned { Parts: EventParts parts }:
                        events.Add((i, parts));
                        break;
                    case TransformResult.Planned { Parts: ProfileParts parts }:
                        profiles.Add((i, parts));
                        break;
                    case var result:
                        decided[i] = RelayProcessor.Decided(result);
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
        var singles = new List<SingleDelivery>();
        var bulkParts = new Dictionary<int, DeliveryParts>();
        IReadOnlyList<EventsBulkCall> eventCalls = [];
        if (events.Count >= threshold)
        {
            events.ForEach(e => bulkParts[e.Message] = e.Parts);
            eventCalls = PackEvents(events.Select(e => e.Message).ToList(), bulkParts);
        }
        else
        {
            singles.AddRange(events.Select(e => new SingleDelivery(e.Message, e.Parts)));
        }

        IReadOnlyList<CarriedCall> importJobs = [];
        IReadOnlyList<CarriedCall> subscriptions = [];
        if (bulkProfiles && profiles.Count >= threshold)
        {
            profiles.ForEach(p => bulkParts[p.Message] = p.Parts);
            (importJobs, subscriptions) = PlanProfiles(profiles);
        }
        else
        {
            singles.AddRange(profiles.Select(p => new SingleDelivery(p.Message, p.Parts)));
        }

        return new BatchPlan
        {
            SameAs = sameAs,
            Decided = decided,
            Singles = singles.OrderBy(s => s.Message).ToList(),
            EventCalls = eventCalls,
            BulkParts = bulkParts,
            ImportJobs = importJobs,
            Subscriptions = subscriptions,
            Failed = failed,
        };
    }

    /// <summary>Event bulk calls for <paramref name="messages"/> (all with <see cref="EventParts"/> in
    /// <paramref name="parts"/>); a call's entries name the message indices they carry.</summary>
    public static IReadOnlyList<EventsBulkCall> PackEvents(IReadOnlyList<int> messages, IReadOnlyDictionary<int, DeliveryParts> parts) =>
        EventsBulkBuilder.Build(messages.Select(m => ((EventParts)parts[m]).Event).ToList())
            .Select(c => c with { Entries = c.Entries.Select(entry => (IReadOnlyList<IReadOnlyList<int>>)entry.Select(ev => (IReadOnlyList<int>)ev.Select(p => messages[p]).ToArray()).ToArray()).ToArray() })
            .ToList();

    private static (IReadOnlyList<CarriedCall> Imports, IReadOnlyList<CarriedCall> Subscriptions) PlanProfiles(List<(int Message, ProfileParts Parts)> profiles)
    {
        // One entry per target list (add-to-list; none for no list or a subscription) and profile.
        var entries = new Dictionary<(string List, ByteKey Identity), List<(int Message, ProfileParts Parts)>>();
        var entryOrder = new List<(string List, ByteKey Identity)>();
        var subscriptionsByList = new Dictionary<string, List<(int Message, SubscriberPart Subscriber)>>(StringComparer.Ordinal);
        foreach (var (message, parts) in profiles)
        {
            var key = (parts.List is { Subscribes: false } list ? list.ListId : "", new ByteKey(parts.Profile.IdentityKey));
            if (!entries.TryGetValue(key, out var updates))
            {
                updates = [];
                entries[key] = updates;
                entryOrder.Add(key);
            }
            updates.Add((message, parts));
            if (parts.List is { Subscriber: { } subscriber } target)
            {
                if (!subscriptionsByList.TryGetValue(target.ListId, out var subscribers))
                {
                    subscribers = [];
                    subscriptionsByList[target.ListId] = subscribers;
                }
                subscribers.Add((message, subscriber));
            }
        }

        var imports = new List<CarriedCall>();
        foreach (var listGroup in entryOrder.GroupBy(k => k.List))
        {
            var merged = new List<ProfilePart>();
            var carried = new List<IReadOnlyList<int>>();
            foreach (var key in listGroup)
            {
                var ordered = entries[key].OrderBy(u => u.Parts.Time).ThenBy(u => u.Message).ToList();
                merged.Add(ProfileMerge.Merge(ordered.Select(u => u.Parts.Profile).ToList()));
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
            foreach (var call in SubscriptionBulkBuilder.Build(listId, items.Select(i => i.Subscriber).ToList()))
            {
                subscriptions.Add(new CarriedCall(call.Request, call.Items.Select(i => (IReadOnlyList<int>)[items[i].Message]).ToArray()));
            }
        }
        return (imports, subscriptions);
    }
}
