using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Options;
using Klaviyo.Functions.Bulk;

namespace Klaviyo.Functions.Relay;

/// <summary>An import job Klaviyo accepted: its id, the POST that started it, and per profile item the batch messages
/// it carries (only those now <see cref="RelayOutcome.AwaitingJob"/>; an item with none is not tracked).</summary>
internal sealed record StartedJob(string JobId, KlaviyoRequest Request, IReadOnlyList<IReadOnlyList<int>> ItemMessages);

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
internal sealed class BulkRelayProcessor(BatchPlanner planner, RelayProcessor single, KlaviyoClient klaviyo, RelayMetrics metrics, IOptions<RelayOptions> options, TimeProvider time)
{
    /// <summary>Also for the one-by-one fallback: a held-back single is not worth the wait of the rest of the batch.</summary>
    private static readonly TimeSpan HeldBackFloor = TimeSpan.FromSeconds(1);

    /// <summary>Single deliveries of a batch run side by side; the rate limiter still paces each endpoint.</summary>
    private const int SingleParallelism = 8;

    private const string OutOfTime = "put off: the batch ran out of its lock time before this call could start";

    public async Task<BatchDecision> ProcessAsync(IReadOnlyList<BatchMessage> batch, DateTimeOffset deadline, CancellationToken cancellationToken = default)
    {
        var outcomes = new RelayOutcome?[batch.Count];
        if (batch.Count > 0 && single.NotReady(batch[0].MessageId, batch[0].Attempt) is not null)
        {
            return new BatchDecision(batch.Select(m => single.NotReady(m.MessageId, m.Attempt)!).ToList(), []);
        }

        var plan = planner.Plan(batch, bulkProfiles: true);
        foreach (var (message, warnings) in plan.BulkWarnings)
        {
            single.LogWarnings(warnings, batch[message].MessageId);
        }
        foreach (var (message, outcome) in plan.Decided)
        {
            outcomes[message] = Finish(outcome, batch[message]);
        }

        var singly = new List<int>();
        await SendEventsAsync(plan, batch, outcomes, singly, deadline, cancellationToken).ConfigureAwait(false);
        await SendCarriedAsync(plan.Subscriptions, batch, outcomes, singly, deadline, null, cancellationToken).ConfigureAwait(false);
        var jobs = new List<StartedJob>();
        await SendCarriedAsync(plan.ImportJobs, batch, outcomes, singly, deadline, jobs, cancellationToken).ConfigureAwait(false);

        var singlePlans = plan.Singles.Select(s => (s.Message, Plan: (RequestPlan?)s.Plan))
            .Concat(singly.Distinct().Where(m => outcomes[m] is null).Select(m => (Message: m, Plan: SinglePlanOf(plan, batch, m))))
            .OrderBy(s => s.Message)
            .ToList();
        var listed = singlePlans.Where(s => IsListAddition(s.Plan)).ToList();
        if (listed.Count > 1)
        {
            singlePlans.RemoveAll(s => IsListAddition(s.Plan));
            await SendListAdditionsAsync(listed.Select(s => (s.Message, s.Plan!)).ToList(), batch, outcomes, deadline, cancellationToken).ConfigureAwait(false);
        }
        var singleTime = options.Value.CallTimeout * RelayOptions.MaxCallsPerPlan;
        await Parallel.ForEachAsync(singlePlans, new ParallelOptions { MaxDegreeOfParallelism = SingleParallelism, CancellationToken = cancellationToken }, async (s, token) =>
        {
            var (message, requestPlan) = s;
            outcomes[message] = !CanStart(singleTime, deadline) ? PutOff(batch[message])
                : requestPlan is null
                    ? await single.ProcessAsync(batch[message].Body, batch[message].MessageId, batch[message].Attempt, token).ConfigureAwait(false)
                    : await single.ExecuteAsync(requestPlan, batch[message].MessageId, batch[message].Attempt, token).ConfigureAwait(false);
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

    private async Task SendEventsAsync(BatchPlan plan, IReadOnlyList<BatchMessage> batch, RelayOutcome?[] outcomes, List<int> singly, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var pending = new Queue<EventsBulkCall>(plan.EventCalls);
        while (pending.Count > 0)
        {
            var call = pending.Dequeue();
            if (!CanStart(options.Value.CallTimeout, deadline))
            {
                foreach (var message in call.Pieces.Distinct())
                {
                    outcomes[message] = PutOff(batch[message]);
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
                        outcomes[message] = Finish(ToOutcome(verdict, batch[message].Attempt), batch[message]);
                        break;
                }
            }
            if (resend.Count > 0)
            {
                // Only what Klaviyo did not refuse, regrouped; every round drops at least one message, so this ends.
                foreach (var again in Rebuild(plan, resend))
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
            if (!CanStart(options.Value.CallTimeout, deadline))
            {
                open.ForEach(m => outcomes[m] = PutOff(batch[m]));
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
                    open.ForEach(m => outcomes[m] = Finish(single.RetryOrGiveUp(null, $"POST {call.Request.Path} answered {success.StatusCode} without the job's data.id", batch[m].Attempt), batch[m]));
                    continue;
                }
                open.ForEach(m => outcomes[m] = new RelayOutcome.AwaitingJob(jobId));
                jobs.Add(new StartedJob(jobId, call.Request, call.ItemMessages.Select(item => (IReadOnlyList<int>)item.Where(open.Contains).ToArray()).ToArray()));
                continue;
            }
            foreach (var (message, verdict) in ProfilesBulkAnswer.Interpret(call, response))
            {
                if (outcomes[message] is not null)
                {
                    continue;
                }
                switch (verdict)
                {
                    case BulkVerdict.SendSingly:
                        singly.Add(message);
                        break;
                    case BulkVerdict.Resend:
                        // Comes back within a second in a batch without the refused profiles, its attempt unspent.
                        outcomes[message] = Finish(new RelayOutcome.RetryLater(HeldBackFloor, batch[message].Attempt, $"POST {call.Request.Path}: resent without the profiles Klaviyo refused"), batch[message]);
                        break;
                    default:
                        outcomes[message] = Finish(ToOutcome(verdict, batch[message].Attempt), batch[message]);
                        break;
                }
            }
        }
    }

    private static bool IsListAddition(RequestPlan? plan) =>
        plan is { Steps: [{ Endpoint: KlaviyoEndpoint.ProfileImport, YieldsProfileId: true }, { Endpoint: KlaviyoEndpoint.AddProfilesToList, NeedsProfileId: true }] };

    /// <summary>
    /// Below the threshold, identifies that add their profile to a list (spec 8.3): each profile-import on its own (its
    /// answer holds the profile id), then one <c>POST /api/lists/{id}/relationships/profiles</c> per list for all the
    /// ids. A list call Klaviyo refuses is repeated per profile, so one refused id does not fail the others.
    /// </summary>
    private async Task SendListAdditionsAsync(List<(int Message, RequestPlan Plan)> listed, IReadOnlyList<BatchMessage> batch, RelayOutcome?[] outcomes, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var ids = new System.Collections.Concurrent.ConcurrentDictionary<int, string>();
        var twoCalls = options.Value.CallTimeout * RelayOptions.MaxCallsPerPlan;
        await Parallel.ForEachAsync(listed, new ParallelOptions { MaxDegreeOfParallelism = SingleParallelism, CancellationToken = cancellationToken }, async (s, token) =>
        {
            var message = batch[s.Message];
            if (!CanStart(twoCalls, deadline))
            {
                outcomes[s.Message] = PutOff(message);
                return;
            }
            single.LogWarnings(s.Plan.Warnings, message.MessageId);
            var (failed, profileId) = await single.SendStepAsync(s.Plan.Steps[0], null, message.Attempt, token).ConfigureAwait(false);
            if (failed is not null)
            {
                outcomes[s.Message] = Finish(failed, message);
                return;
            }
            ids[s.Message] = profileId!;
        }).ConfigureAwait(false);

        foreach (var list in listed.Where(s => ids.ContainsKey(s.Message)).GroupBy(s => ListTarget.FromStep(s.Plan.Steps[1]).ListId, StringComparer.Ordinal))
        {
            var members = list.Select(s => s.Message).ToList();
            foreach (var call in ListMembersBuilder.Build(list.Key, members.Select(m => ids[m]).ToList()))
            {
                var carried = call.Items.Select(i => members[i]).ToList();
                var response = await klaviyo.SendAsync(call.Request, cancellationToken).ConfigureAwait(false);
                Count(call.Request, carried.Count, response);
                if (response is KlaviyoResponse.Rejected && carried.Count > 1)
                {
                    foreach (var message in carried)
                    {
                        var alone = ListMembersBuilder.Build(list.Key, [ids[message]])[0].Request;
                        Settle(message, alone, await klaviyo.SendAsync(alone, cancellationToken).ConfigureAwait(false));
                    }
                    continue;
                }
                carried.ForEach(message => Settle(message, call.Request, response));
            }
        }

        void Settle(int message, KlaviyoRequest request, KlaviyoResponse response) =>
            outcomes[message] = Finish(single.Read(request, response, batch[message].Attempt) ?? new RelayOutcome.Delivered(2), batch[message]);
    }

    private void Count(KlaviyoRequest request, int items, KlaviyoResponse response)
    {
        if (response is not KlaviyoResponse.HeldBack)
        {
            metrics.BulkCallSent(request.Endpoint, items);
        }
    }

    /// <summary>The single-call plan of a message a bulk call sent back: an event's own call, else its whole plan again.</summary>
    private static RequestPlan? SinglePlanOf(BatchPlan plan, IReadOnlyList<BatchMessage> batch, int message) =>
        plan.EventPieces.TryGetValue(message, out var piece) && piece.Single is { } request ? new RequestPlan([PlanStep.Fixed(request)]) : null;

    /// <summary>Reports <paramref name="outcome"/> for <paramref name="message"/> (log, metric) through the single processor.</summary>
    private RelayOutcome Finish(RelayOutcome outcome, BatchMessage message) => single.Finish(outcome, message.MessageId, message.Attempt);

    private bool CanStart(TimeSpan longest, DateTimeOffset deadline) => time.GetUtcNow() + longest <= deadline;

    private RelayOutcome PutOff(BatchMessage message) =>
        Finish(new RelayOutcome.RetryLater(HeldBackFloor, message.Attempt, OutOfTime), message);

    private static IEnumerable<EventsBulkCall> Rebuild(BatchPlan plan, List<int> messages)
    {
        var pieces = messages.Select(m => plan.EventPieces[m]).ToList();
        return EventsBulkBuilder.Build(pieces).Select(c => c with
        {
            Entries = c.Entries.Select(entry => (IReadOnlyList<IReadOnlyList<int>>)entry.Select(ev => (IReadOnlyList<int>)ev.Select(p => messages[p]).ToArray()).ToArray()).ToArray(),
        });
    }

    /// <summary>What a bulk verdict means for a message on its <paramref name="attempt"/> (also for an ended import job's).</summary>
    internal RelayOutcome ToOutcome(BulkVerdict verdict, int attempt) => verdict switch
    {
        BulkVerdict.Delivered => new RelayOutcome.Delivered(1),
        BulkVerdict.DeadLetter dead => new RelayOutcome.DeadLetter(dead.Reason == BulkRefusal.KlaviyoUnauthorized ? DeadLetterReason.KlaviyoUnauthorized : DeadLetterReason.KlaviyoRejected, dead.Description),
        BulkVerdict.RetryLater { SpendsAttempt: false } held => new RelayOutcome.RetryLater(Max(held.RetryAfter ?? HeldBackFloor, HeldBackFloor), attempt, held.Cause),
        BulkVerdict.RetryLater retry => single.RetryOrGiveUp(retry.RetryAfter, retry.Cause, attempt),
        _ => throw new InvalidOperationException($"No outcome for {verdict.GetType().Name}."),
    };

    // A repeated messageId takes the first's outcome; a retry counts from the repeat's own attempt.
    private static RelayOutcome Repeat(RelayOutcome outcome, int firstAttempt, int attempt) => outcome switch
    {
        RelayOutcome.RetryLater retry => retry with { NextAttempt = attempt + (retry.NextAttempt - firstAttempt) },
        _ => outcome,
    };

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
