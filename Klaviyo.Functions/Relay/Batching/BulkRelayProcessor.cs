using Klaviyo.Functions.Calls;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Options;
using Klaviyo.Functions.Bulk;

namespace Klaviyo.Functions.Relay;

/// <summary>An import job Klaviyo accepted: its id, the POST that started it, and per profile item the batch messages
/// it carries (only those now <see cref="RelayOutcome.AwaitingJob"/>; an item with none is not tracked).</summary>
/// <param name="ItemIdentities">Each profile item's identifiers as text, for the job's ticket (no read of the body back).</param>
internal sealed record StartedJob(string JobId, KlaviyoRequest Request, IReadOnlyList<IReadOnlyList<int>> ItemMessages, IReadOnlyList<string?> ItemIdentities);

/// <summary>One outcome per message of a batch, in batch order, and the import jobs whose messages wait for them.</summary>
internal sealed record BatchDecision(IReadOnlyList<RelayOutcome> Outcomes, IReadOnlyList<StartedJob> Jobs);

/// <summary>
/// Decides a whole batch (spec 8.1–8.3): one <see cref="RelayOutcome"/> per message, settled by the caller message by
/// message. At or above <c>Relay__BulkThreshold</c> events go through <c>POST /api/event-bulk-create-jobs</c> (entries
/// Klaviyo points at are dead-lettered, the rest resent at once; a refusal naming no entry sends that call's events one
/// by one), profiles through import jobs per list (their messages then await the job) and subscriptions through one
/// subscription job per list. Below it, one message at a time as before.
/// </summary>
/// <remarks>A batch has no lock renewal: a call is started only while its longest run still ends before
/// <c>deadline</c>; what cannot start is put off (same attempt) and comes back in a later batch.</remarks>
internal sealed class BulkRelayProcessor(BatchPlanner planner, RelayProcessor single, KlaviyoClient klaviyo, OutcomePolicy policy, RelayMetrics metrics, IOptions<RelayOptions> options,
    TimeProvider time)
{
    /// <summary>Single deliveries of a batch run side by side; the rate limiter still paces each endpoint.</summary>
    private const int SingleParallelism = 8;

    /// <param name="gather">True when the caller keeps <see cref="RelayOutcome.Gathered"/> messages for its next batch:
    /// a part-full call whose messages have all waited less than <c>Relay__GatherWindow</c> is then held back instead of sent.</param>
    public async Task<BatchDecision> ProcessAsync(IReadOnlyList<BatchMessage> batch, DateTimeOffset deadline, CancellationToken cancellationToken = default, bool gather = false)
    {
        var outcomes = new RelayOutcome?[batch.Count];
        if (batch.Count > 0 && policy.NotReady(batch[0].Attempt) is not null)
        {
            return new BatchDecision(batch.Select(m => Finish(policy.NotReady(m.Attempt)!, m)).ToList(), []);
        }

        var plan = planner.Plan(batch, bulkProfiles: true);
        foreach (var (message, parts) in plan.BulkParts)
        {
            policy.LogWarnings(parts.Warnings, batch[message].MessageId);
        }
        foreach (var (message, outcome) in plan.Decided)
        {
            outcomes[message] = Finish(outcome, batch[message]);
        }
        if (gather)
        {
            var held = Gather(plan, batch);
            foreach (var message in held)
            {
                outcomes[message] = new RelayOutcome.Gathered();
            }
            metrics.Gathered(held.Count);
        }

        var singly = new List<int>();
        await SendEventsAsync(plan, batch, outcomes, singly, deadline, cancellationToken).ConfigureAwait(false);
        await SendCarriedAsync(plan.Subscriptions, batch, outcomes, singly, deadline, null, cancellationToken).ConfigureAwait(false);
        var jobs = new List<StartedJob>();
        await SendCarriedAsync(plan.ImportJobs, batch, outcomes, singly, deadline, jobs, cancellationToken).ConfigureAwait(false);

        // Below the threshold, and what a bulk call sent back: each message with its single calls, from its parts.
        var singles = plan.Singles
            .Concat(singly.Distinct().Where(m => outcomes[m] is null).Select(m => new SingleDelivery(m, plan.BulkParts[m])))
            .OrderBy(s => s.Message)
            .ToList();
        var listed = singles.Where(s => s.Parts is ProfileParts { List.Action: ListAction.Add or ListAction.Remove }).ToList();
        if (listed.Count > 1)
        {
            singles.RemoveAll(listed.Contains);
            await SendListMembershipAsync(listed, batch, outcomes, deadline, cancellationToken).ConfigureAwait(false);
        }
        var singleTime = options.Value.CallTimeout * RelayOptions.MaxCallsPerPlan;
        await Parallel.ForEachAsync(singles, new ParallelOptions { MaxDegreeOfParallelism = SingleParallelism, CancellationToken = cancellationToken }, async (s, token) =>
        {
            var message = batch[s.Message];
            outcomes[s.Message] = policy.CanStart(singleTime, deadline)
                ? await single.DeliverAsync(s.Parts, message.MessageId, message.Attempt, token).ConfigureAwait(false)
                : Finish(OutcomePolicy.OutOfLockTime(message.Attempt), message);
        }).ConfigureAwait(false);
        foreach (var message in plan.Failed)
        {
            // Planning this message hit a bug: it alone goes the single path, which reports a bug as such.
            outcomes[message] = await single.ProcessAsync(batch[message].Body, batch[message].MessageId, batch[message].Attempt, cancellationToken).ConfigureAwait(false);
        }

        var result = new RelayOutcome[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var first = plan.SameAs[i];
            result[i] = first == i
                ? outcomes[i] ?? throw new InvalidOperationException($"Message {i} of the batch got no outcome.")
                : Finish(Repeat(outcomes[first]!, batch[first].Attempt, batch[i].Attempt), batch[i]);
        }
        // A repeat of a message awaiting a job is completed with it: the job's tracker carries the repeat too.
        return new BatchDecision(result, jobs.Select(job => job with
        {
            ItemMessages = job.ItemMessages.Select(item => (IReadOnlyList<int>)Enumerable.Range(0, batch.Count).Where(i => item.Contains(plan.SameAs[i])).ToArray()).ToArray(),
        }).ToList());
    }

    /// <summary>
    /// What waits for the next batch (spec 8, <c>Relay__GatherWindow</c>): the last event call when it is part-full
    /// (the others are full by construction), and the batch's bulk profiles as a whole (their import jobs and the
    /// subscription jobs riding with them) while no import job is full. Only while every message concerned has waited
    /// less than the window: then the call goes, full or not, so no message waits much longer than the window.
    /// </summary>
    private HashSet<int> Gather(BatchPlan plan, IReadOnlyList<BatchMessage> batch)
    {
        var held = new HashSet<int>();
        var window = options.Value.GatherWindow;
        if (window <= TimeSpan.Zero)
        {
            return held;
        }
        var now = time.GetUtcNow();
        bool Young(int message) => batch[message].WaitingSince is not { } since || now - since < window;

        // Fewer messages than the threshold (an order alone, say) go at once, as single calls would.
        var eventMessages = plan.EventCalls.SelectMany(call => call.Pieces).Distinct().Count();
        if (eventMessages >= options.Value.BulkThreshold && plan.EventCalls[^1] is { EventCount: < BulkLimits.MaxEventsPerCall } last && last.Pieces.All(Young))
        {
            held.UnionWith(last.Pieces);
        }
        var profiles = plan.ImportJobs.SelectMany(job => job.Messages).ToHashSet();
        if (profiles.Count > 0 && plan.ImportJobs.All(job => job.ItemMessages.Count < BulkLimits.MaxProfilesPerImportJob) && profiles.All(Young))
        {
            held.UnionWith(profiles);
        }
        return held;
    }

    private async Task SendEventsAsync(BatchPlan plan, IReadOnlyList<BatchMessage> batch, RelayOutcome?[] outcomes, List<int> singly, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var pending = new Queue<EventsBulkCall>(plan.EventCalls.Where(call => call.Pieces.Any(m => outcomes[m] is null)));
        while (pending.Count > 0)
        {
            var call = pending.Dequeue();
            if (!policy.CanStart(options.Value.CallTimeout, deadline))
            {
                foreach (var message in call.Pieces.Distinct())
                {
                    outcomes[message] = Finish(OutcomePolicy.OutOfLockTime(batch[message].Attempt), batch[message]);
                }
                continue;
            }
            var response = await klaviyo.SendAsync(call.Request, cancellationToken).ConfigureAwait(false);
            Count(call.Request, call.EventCount, response);
            var resend = new List<int>();
            foreach (var (message, verdict) in EventsBulkAnswer.Interpret(call, response))
            {
                switch (verdict)
                {
                    case BulkVerdict.Resend:
                        resend.Add(message);
                        break;
                    case BulkVerdict.SendSingly:
                        singly.Add(message);
                        break;
                    default:
                        outcomes[message] = Finish(policy.FromVerdict(verdict, batch[message].Attempt), batch[message]);
                        break;
                }
            }
            if (resend.Count > 0)
            {
                // Only what Klaviyo did not refuse, regrouped; every round drops at least one message, so this ends.
                foreach (var again in BatchPlanner.PackEvents(resend, plan.BulkParts))
                {
                    pending.Enqueue(again);
                }
            }
        }
    }

    /// <summary>Subscription jobs (<paramref name="jobs"/> null: accepted leaves the message to its import job, a
    /// failure decides it) or import jobs (accepted means awaiting the job). A message already decided keeps that outcome.</summary>
    private async Task SendCarriedAsync(IReadOnlyList<CarriedCall> calls, IReadOnlyList<BatchMessage> batch, RelayOutcome?[] outcomes, List<int> singly,
        DateTimeOffset deadline, List<StartedJob>? jobs, CancellationToken cancellationToken)
    {
        foreach (var call in calls)
        {
            var open = call.Messages.Where(m => outcomes[m] is null).Distinct().ToList();
            if (open.Count == 0)
            {
                continue;
            }
            if (!policy.CanStart(options.Value.CallTimeout, deadline))
            {
                open.ForEach(m => outcomes[m] = Finish(OutcomePolicy.OutOfLockTime(batch[m].Attempt), batch[m]));
                continue;
            }
            var response = await klaviyo.SendAsync(call.Request, cancellationToken).ConfigureAwait(false);
            Count(call.Request, call.ItemMessages.Count, response);
            if (jobs is null && response is KlaviyoResponse.Success)
            {
                continue; // subscribed; the profile's own attributes still go through its import job
            }
            if (jobs is not null && response is KlaviyoResponse.Success success)
            {
                if (success.DataId is not { Length: > 0 } jobId)
                {
                    open.ForEach(m => outcomes[m] = Finish(policy.RetryOrGiveUp(null, $"POST {call.Request.Path} answered {success.StatusCode} without the job's data.id", batch[m].Attempt), batch[m]));
                    continue;
                }
                open.ForEach(m => outcomes[m] = new RelayOutcome.AwaitingJob(jobId));
                jobs.Add(new StartedJob(jobId, call.Request, call.ItemMessages.Select(item => (IReadOnlyList<int>)item.Where(open.Contains).ToArray()).ToArray(),
                    call.ItemIdentities ?? throw new InvalidOperationException("An import job is planned with its profiles' identities.")));
                continue;
            }
            foreach (var (message, verdict) in ProfilesBulkAnswer.Interpret(call, response))
            {
                if (outcomes[message] is not null)
                {
                    continue;
                }
                outcomes[message] = verdict switch
                {
                    BulkVerdict.SendSingly => null,
                    // Comes back within a second in a batch without the refused profiles, its attempt unspent.
                    BulkVerdict.Resend => Finish(OutcomePolicy.PutOff(batch[message].Attempt, $"POST {call.Request.Path}: resent without the profiles Klaviyo refused"), batch[message]),
                    _ => Finish(policy.FromVerdict(verdict, batch[message].Attempt), batch[message]),
                };
                if (verdict is BulkVerdict.SendSingly)
                {
                    singly.Add(message);
                }
            }
        }
    }

    /// <summary>
    /// Identifies that add their profile to a list or remove it (spec 8.3): each profile-import on its own (its answer
    /// holds the profile id), then one <c>POST</c> (or <c>DELETE</c>) <c>/api/lists/{id}/relationships/profiles</c> per
    /// list for all the ids, up to 1,000 a call. A list call Klaviyo refuses is repeated per profile, so one refused id
    /// does not fail the others.
    /// </summary>
    private async Task SendListMembershipAsync(List<SingleDelivery> listed, IReadOnlyList<BatchMessage> batch, RelayOutcome?[] outcomes, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var ids = new System.Collections.Concurrent.ConcurrentDictionary<int, string>();
        var twoCalls = options.Value.CallTimeout * RelayOptions.MaxCallsPerPlan;
        await Parallel.ForEachAsync(listed, new ParallelOptions { MaxDegreeOfParallelism = SingleParallelism, CancellationToken = cancellationToken }, async (s, token) =>
        {
            var message = batch[s.Message];
            if (!policy.CanStart(twoCalls, deadline))
            {
                outcomes[s.Message] = Finish(OutcomePolicy.OutOfLockTime(message.Attempt), message);
                return;
            }
            var parts = (ProfileParts)s.Parts;
            policy.LogWarnings(parts.Warnings, message.MessageId);
            var (failed, profileId) = await single.SendStepAsync(PlanStep.Fixed(KlaviyoCalls.ProfileImport(parts.Profile), yieldsProfileId: true), null, message.Attempt, token).ConfigureAwait(false);
            if (failed is not null)
            {
                outcomes[s.Message] = Finish(failed, message);
                return;
            }
            ids[s.Message] = profileId!;
        }).ConfigureAwait(false);

        foreach (var list in listed.Where(s => ids.ContainsKey(s.Message)).GroupBy(s => (((ProfileParts)s.Parts).List!.ListId, ((ProfileParts)s.Parts).List!.Action)))
        {
            var (listId, action) = list.Key;
            var remove = action == ListAction.Remove;
            var members = list.Select(s => s.Message).ToList();
            foreach (var call in ListMembersBuilder.Build(listId, members.Select(m => ids[m]).ToList(), remove: remove))
            {
                var carried = call.Items.Select(i => members[i]).ToList();
                var response = await klaviyo.SendAsync(call.Request, cancellationToken).ConfigureAwait(false);
                Count(call.Request, carried.Count, response);
                if (response is KlaviyoResponse.Rejected && carried.Count > 1)
                {
                    foreach (var message in carried)
                    {
                        var alone = remove ? KlaviyoCalls.RemoveFromList(listId, [ids[message]]) : KlaviyoCalls.AddToList(listId, [ids[message]]);
                        Settle(message, alone, await klaviyo.SendAsync(alone, cancellationToken).ConfigureAwait(false));
                    }
                    continue;
                }
                carried.ForEach(message => Settle(message, call.Request, response));
            }
        }

        void Settle(int message, KlaviyoRequest request, KlaviyoResponse response) =>
            outcomes[message] = Finish(policy.FromAnswer(request, response, batch[message].Attempt) ?? new RelayOutcome.Delivered(2), batch[message]);
    }

    private void Count(KlaviyoRequest request, int items, KlaviyoResponse response)
    {
        if (response is not KlaviyoResponse.HeldBack)
        {
            metrics.BulkCallSent(request.Endpoint, items);
        }
    }

    private RelayOutcome Finish(RelayOutcome outcome, BatchMessage message) => policy.Finish(outcome, message.MessageId, message.Attempt);

    // A repeated messageId takes the first's outcome; a retry counts from the repeat's own attempt.
    private static RelayOutcome Repeat(RelayOutcome outcome, int firstAttempt, int attempt) => outcome switch
    {
        RelayOutcome.RetryLater retry => retry with { NextAttempt = attempt + (retry.NextAttempt - firstAttempt) },
        _ => outcome,
    };
}
