using Klaviyo.Functions.Calls;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Options;
using Klaviyo.Functions.Bulk;

namespace Klaviyo.Functions.Relay;

/// <summary>One queue message of a batch: its messageId, body (the event as UTF-8 JSON) and 1-based attempt.</summary>
/// <param name="WaitingSince">When it was first held back for a fuller call (<see cref="RelayOutcome.Gathered"/>); null when it never was.</param>
internal sealed record BatchMessage(string MessageId, ReadOnlyMemory<byte> Body, int Attempt, DateTimeOffset? WaitingSince = null);

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

    /// <summary>Subscription and unsubscription jobs, one list each: item k is <c>profiles.data[k]</c>.</summary>
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
        var deletions = new List<SingleDelivery>();

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
                    case TransformResult.Planned { Parts: DeletionParts parts }:
                        // Never batched (spec 8.3): one identifier per job, on the deletion endpoint's own budget.
                        deletions.Add(new SingleDelivery(i, parts));
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

        DropSupersededConsent(profiles);
        var threshold = options.Value.BulkThreshold;
        var singles = new List<SingleDelivery>(deletions);
        var bulkParts = new Dictionary<int, DeliveryParts>();
        IReadOnlyList<EventsBulkCall> eventCalls = [];
        // An order of more than two events goes in one bulk call even alone: sent one by one, its calls would outrun
        // the two a delivery's lock budget counts on (RelayOptions.MaxCallsPerPlan).
        if (events.Count >= threshold || events.Any(e => e.Parts.Events.Count > RelayOptions.MaxCallsPerPlan))
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
            // A removal needs the profile id a profile-import answers with (an import job gives none): those go singly,
            // and their list calls are grouped per list.
            singles.AddRange(profiles.Where(p => p.Parts.List is { Action: ListAction.Remove }).Select(p => new SingleDelivery(p.Message, p.Parts)));
            profiles.RemoveAll(p => p.Parts.List is { Action: ListAction.Remove });
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
    /// <paramref name="parts"/>); a call's entries name the message indices they carry, and a message's events (an
    /// order's 1 + N) share one call.</summary>
    public static IReadOnlyList<EventsBulkCall> PackEvents(IReadOnlyList<int> messages, IReadOnlyDictionary<int, DeliveryParts> parts) =>
        EventsBulkBuilder.BuildMessages(messages.Select(m => ((EventParts)parts[m]).Events).ToList())
            .Select(c => c with { Entries = c.Entries.Select(entry => (IReadOnlyList<IReadOnlyList<int>>)entry.Select(ev => (IReadOnlyList<int>)ev.Select(p => messages[p]).ToArray()).ToArray()).ToArray() })
            .ToList();

    /// <summary>
    /// A profile's subscribe and unsubscribe to the same list in one batch (spec 8.3): only the later (event time, then
    /// arrival) is sent; the earlier message still updates the profile (its list step is dropped).
    /// </summary>
    private static void DropSupersededConsent(List<(int Message, ProfileParts Parts)> profiles)
    {
        var latest = new Dictionary<(string List, ByteKey Identity), int>();
        for (var i = 0; i < profiles.Count; i++)
        {
            if (profiles[i].Parts.List is not { ChangesConsent: true } list)
            {
                continue;
            }
            var key = (list.ListId, new ByteKey(profiles[i].Parts.Profile.IdentityKey));
            if (latest.TryGetValue(key, out var other))
            {
                var (earlier, later) = profiles[other].Parts.Time <= profiles[i].Parts.Time ? (other, i) : (i, other);
                profiles[earlier] = (profiles[earlier].Message, profiles[earlier].Parts with { List = null });
                latest[key] = later;
                continue;
            }
            latest[key] = i;
        }
    }

    private static (IReadOnlyList<CarriedCall> Imports, IReadOnlyList<CarriedCall> Subscriptions) PlanProfiles(List<(int Message, ProfileParts Parts)> profiles)
    {
        // One entry per target list (add-to-list; none for no list or a consent change) and profile.
        var entries = new Dictionary<(string List, ByteKey Identity), List<(int Message, ProfileParts Parts)>>();
        var entryOrder = new List<(string List, ByteKey Identity)>();
        var consentCalls = new Dictionary<(ListAction Action, string ListId, bool Historical, string? CustomSource), List<(int Message, SubscriberPart Subscriber)>>();
        foreach (var (message, parts) in profiles)
        {
            var key = (parts.List is { Action: ListAction.Add } list ? list.ListId : "", new ByteKey(parts.Profile.IdentityKey));
            if (!entries.TryGetValue(key, out var updates))
            {
                updates = [];
                entries[key] = updates;
                entryOrder.Add(key);
            }
            updates.Add((message, parts));
            if (parts.List is { ChangesConsent: true, Subscriber: { } subscriber } target)
            {
                var (listId, historical, source) = KlaviyoCalls.SubscriptionKey(target.ListId, subscriber);
                var callKey = (target.Action, listId, historical, source);
                if (!consentCalls.TryGetValue(callKey, out var subscribers))
                {
                    subscribers = [];
                    consentCalls[callKey] = subscribers;
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
                imports.Add(new CarriedCall(call.Request, call.Items.Select(i => carried[i]).ToArray(), call.Items.Select(i => merged[i].IdentityText).ToArray()));
            }
        }

        var subscriptions = new List<CarriedCall>();
        foreach (var ((action, listId, _, _), items) in consentCalls)
        {
            var subscribers = items.Select(i => i.Subscriber).ToList();
            var calls = action == ListAction.Subscribe ? SubscriptionBulkBuilder.Build(listId, subscribers) : SubscriptionBulkBuilder.BuildUnsubscribe(listId, subscribers);
            foreach (var call in calls)
            {
                subscriptions.Add(new CarriedCall(call.Request, call.Items.Select(i => (IReadOnlyList<int>)[items[i].Message]).ToArray()));
            }
        }
        return (imports, subscriptions);
    }
}
