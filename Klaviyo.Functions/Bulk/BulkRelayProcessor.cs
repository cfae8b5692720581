using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Bulk;

/// <summary>
/// Decides a whole batch (spec 8.1–8.2): one <see cref="RelayOutcome"/> per message, in batch order, settled by the
/// caller message by message. Events at or above <c>Relay__BulkThreshold</c> go through
/// <c>POST /api/event-bulk-create-jobs</c>; entries Klaviyo points at are dead-lettered and the rest resent at once in
/// the same invocation; a refusal naming no entry sends that call's events one by one. Everything else (and profiles,
/// until import jobs can be waited for across invocations) is delivered one message at a time as before.
/// </summary>
internal sealed class BulkRelayProcessor(BatchPlanner planner, RelayProcessor single, KlaviyoClient klaviyo, RelayMetrics metrics)
{
    /// <summary>Also for the one-by-one fallback: a held-back single is not worth the wait of the rest of the batch.</summary>
    private static readonly TimeSpan HeldBackFloor = TimeSpan.FromSeconds(1);

    public async Task<IReadOnlyList<RelayOutcome>> ProcessAsync(IReadOnlyList<BatchMessage> batch, CancellationToken cancellationToken = default)
    {
        var plan = planner.Plan(batch, bulkProfiles: false);
        var outcomes = new RelayOutcome?[batch.Count];

        foreach (var (message, outcome) in plan.Decided)
        {
            outcomes[message] = single.Finish(outcome, batch[message].MessageId, batch[message].Attempt);
        }

        var pending = new Queue<EventsBulkCall>(plan.EventCalls);
        var singly = new List<int>();
        while (pending.Count > 0)
        {
            var call = pending.Dequeue();
            var response = await klaviyo.SendAsync(call.Request, cancellationToken).ConfigureAwait(false);
            if (response is not KlaviyoResponse.HeldBack)
            {
                metrics.BulkCallSent(call.Request.Endpoint, call.EventCount);
            }
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
                        outcomes[message] = single.Finish(ToOutcome(verdict, batch[message]), batch[message].MessageId, batch[message].Attempt);
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

        var singles = plan.Singles.Select(s => (s.Message, s.Plan))
            .Concat(singly.Select(m => (Message: m, Plan: new RequestPlan([PlanStep.Fixed(plan.EventPieces[m].Single!)]))))
            .OrderBy(s => s.Message);
        foreach (var (message, requestPlan) in singles)
        {
            outcomes[message] = await single.ExecuteAsync(requestPlan, batch[message].MessageId, batch[message].Attempt, cancellationToken).ConfigureAwait(false);
        }
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
                : single.Finish(Repeat(outcomes[first]!, batch[first].Attempt, batch[i].Attempt), batch[i].MessageId, batch[i].Attempt);
        }
        return result;
    }

    private static IEnumerable<EventsBulkCall> Rebuild(BatchPlan plan, List<int> messages)
    {
        var pieces = messages.Select(m => plan.EventPieces[m]).ToList();
        return EventsBulkBuilder.Build(pieces).Select(c => c with
        {
            Entries = c.Entries.Select(entry => (IReadOnlyList<IReadOnlyList<int>>)entry.Select(ev => (IReadOnlyList<int>)ev.Select(p => messages[p]).ToArray()).ToArray()).ToArray(),
        });
    }

    private RelayOutcome ToOutcome(BulkVerdict verdict, BatchMessage message) => verdict switch
    {
        BulkVerdict.Delivered => new RelayOutcome.Delivered(1),
        BulkVerdict.DeadLetter dead => new RelayOutcome.DeadLetter(dead.Reason, dead.Description),
        BulkVerdict.RetryLater { SpendsAttempt: false } held => new RelayOutcome.RetryLater(Max(held.RetryAfter ?? HeldBackFloor, HeldBackFloor), message.Attempt, held.Cause),
        BulkVerdict.RetryLater retry => single.RetryOrGiveUp(retry.RetryAfter, retry.Cause, message.Attempt),
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
