using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// Runs the processor for a received message and settles it: the one translation of a <see cref="RelayOutcome"/> into
/// queue actions, shared by <see cref="RelayFunction"/> (Service Bus) and local mode's worker.
/// </summary>
internal sealed partial class RelaySettler(
    BulkRelayProcessor bulk,
    ImportJobTracker tracker,
    OutcomePolicy policy,
    IOptions<RelayOptions> options,
    TimeProvider time,
    ILogger<RelaySettler> logger,
    Diagnostics.RelayMetrics metrics,
    IOrderingBarrier? barrier = null)
{
    private readonly IOrderingBarrier _barrier = barrier ?? new NoOrderingBarrier();

    /// <summary>How long settling may take once the work is done, so the invocation stays inside the message's lock.</summary>
    public static readonly TimeSpan SettlementTimeout = TimeSpan.FromSeconds(20);

    /// <summary>How long a message whose settlement failed is held before it is given back, so a broker hiccup does
    /// not turn into an instant redelivery loop that spends the delivery count in a second.</summary>
    public static readonly TimeSpan GiveBackDelay = TimeSpan.FromSeconds(2);

    /// <summary>Bound of the give-back call itself; with <see cref="SettlementTimeout"/> and <see cref="GiveBackDelay"/>
    /// settling stays within the 30 s the lock budget keeps for it.</summary>
    public static readonly TimeSpan GiveBackTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Application property set on a message given back after a failed settlement: which action failed and the exception type.</summary>
    public const string SettlementFailureProperty = "settlementFailure";

    /// <summary>
    /// Processes and settles a batch (spec 8.1): the bulk processor decides the events, each import job's tracker is
    /// queued before its messages are parked, trackers in the batch are checked, and every message is settled on its
    /// own (grouped by identical action, so the local queue commits once per group). A host stop mid-batch settles
    /// every message as a retry now (attempt + 1: every call is idempotent); a bug outside what the processor catches
    /// per message retries them like a transient failure until their attempts run out, then dead-letters them
    /// <c>ProcessingFailed</c>. Settling runs under its own bounded timeout, not the host's token. A settlement call
    /// that fails gives its messages back (after <see cref="GiveBackDelay"/>, recording <see cref="SettlementFailureProperty"/>);
    /// one that cannot be given back is left to its lock, without failing the rest of the batch.
    /// </summary>
    /// <returns>The outcome of every event message settled: those of the batch (a tracker is the relay's own and has
    /// none), then those an ended job's tracker took back.</returns>
    /// <param name="gather">The caller keeps <see cref="RelayOutcome.Gathered"/> messages (its settlement's
    /// <see cref="IRelaySettlement{TMessage}.GatherAsync"/>) and hands them back with its next batch.</param>
    public async Task<IReadOnlyList<RelayOutcome>> RelayBatchAsync<TMessage>(IRelaySettlement<TMessage> settlement, IReadOnlyList<RelayDelivery<TMessage>> deliveries, CancellationToken cancellationToken,
        bool gather = false)
    {
        // No lock renewal in batch mode: everything must be settled within the lock taken when the batch was received.
        var deadline = policy.BatchDeadline();
        var results = new List<RelayOutcome>();
        var markers = deliveries.Where(d => d.Subject == RelayMessage.GatheredSubject).ToList();
        if (markers.Count > 0)
        {
            // A gathering marker's messages have waited their window: they go with this batch, full call or not.
            var taken = new List<RelayDelivery<TMessage>>();
            foreach (var marker in markers)
            {
                var back = GatheredParking.ReadMarker(marker.Body) is { } sequences ? await TakeBackAsync(settlement, sequences, cancellationToken).ConfigureAwait(false) : [];
                // Due by the marker's own time, whatever stamp the message kept.
                taken.AddRange(back.Select(d => d with { WaitingSince = DateTimeOffset.UnixEpoch }));
            }
            deliveries = [.. deliveries.Where(d => d.Subject != RelayMessage.GatheredSubject), .. taken];
        }
        var events = Enumerable.Range(0, deliveries.Count).Where(i => deliveries[i].Subject != RelayMessage.ImportJobSubject).ToList();
        var trackers = Enumerable.Range(0, deliveries.Count).Where(i => deliveries[i].Subject == RelayMessage.ImportJobSubject).ToList();

        if (events.Count > 0)
        {
            // Per-profile ordering (spec 10) first: a held message is put off as the same attempt, never sent.
            var check = await CheckOrderingAsync(deliveries, events, cancellationToken).ConfigureAwait(false);
            var held = events.Where(i => check.Held.ContainsKey(i)).ToList();
            events = events.Where(i => !check.Held.ContainsKey(i)).ToList();
            var decision = events.Count == 0 ? new BatchDecision([], []) : await DecideAsync(events.Select(i => deliveries[i]).ToList(), deadline, gather, cancellationToken).ConfigureAwait(false);
            var settled = events.Select((index, k) => (Delivery: deliveries[index], Outcome: decision.Outcomes[k])).ToList();
            foreach (var index in held)
            {
                var hold = check.Held[index];
                settled.Add((deliveries[index], policy.Finish(OutcomePolicy.PutOff(deliveries[index].Attempt, hold.Cause, hold.Delay), deliveries[index].EventMessageId, deliveries[index].Attempt)));
            }
            using (var bounded = new CancellationTokenSource(SettlementTimeout, time))
            {
                foreach (var job in decision.Jobs)
                {
                    var parked = job.ItemMessages.SelectMany(m => m).Distinct().ToList();
                    try
                    {
                        // The tracker first: a parked message without one would wait for its time to live.
                        var (message, due) = tracker.Start(job, job.ItemMessages.Select(item => (IReadOnlyList<long>)item.Select(k => deliveries[events[k]].Sequence).ToArray()).ToList());
                        await settlement.SendLaterAsync(message, due, bounded.Token).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is not OutOfMemoryException)
                    {
                        LogTrackerFailed(logger, job.JobId, ex.GetType().Name);
                        foreach (var k in parked)
                        {
                            // Not parked: retried as a transient failure, so a later job carries it.
                            settled[k] = (settled[k].Delivery, policy.RetryOrGiveUp(null, $"the tracker of import job {job.JobId} could not be queued", settled[k].Delivery.Attempt));
                        }
                    }
                }
                results.AddRange(await SettleOrderedAsync(settlement, check, settled, held.Count, bounded.Token).ConfigureAwait(false));
            }
        }
        foreach (var index in trackers)
        {
            results.AddRange(await TrackAsync(settlement, deliveries[index], deadline, cancellationToken).ConfigureAwait(false));
        }
        if (markers.Count > 0)
        {
            // Done once what it named is settled (or held again by this batch, under a marker of its own).
            using var bounded = new CancellationTokenSource(SettlementTimeout, time);
            try
            {
                await settlement.CompleteAsync(markers.Select(m => m.Message).ToList(), bounded.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                await GiveBackEachAsync(settlement, markers, "complete", ex).ConfigureAwait(false);
            }
        }
        return results;
    }

    /// <summary>Takes messages parked for a fuller call back; those gone (settled) or locked elsewhere are absent, and a
    /// failed receive leaves them parked for their marker (logged, never thrown: the batch goes on without them).</summary>
    public async Task<IReadOnlyList<RelayDelivery<TMessage>>> TakeBackAsync<TMessage>(IRelaySettlement<TMessage> settlement, IReadOnlyList<long> sequences, CancellationToken cancellationToken)
    {
        using var bounded = new CancellationTokenSource(SettlementTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, bounded.Token);
        try
        {
            return await settlement.ReceiveDeferredAsync(sequences, linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException && !cancellationToken.IsCancellationRequested)
        {
            LogTakeBackFailed(logger, sequences.Count, ex.GetType().Name);
            return [];
        }
    }

    private async Task<BatchDecision> DecideAsync<TMessage>(IReadOnlyList<RelayDelivery<TMessage>> events, DateTimeOffset deadline, bool gather, CancellationToken cancellationToken)
    {
        try
        {
            return await bulk.ProcessAsync(events.Select(d => new BatchMessage(d.EventMessageId, d.Body, d.Attempt, d.WaitingSince)).ToList(), deadline, cancellationToken, gather).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogInterrupted(logger, events.Count);
            return new BatchDecision(events.Select(d => (RelayOutcome)new RelayOutcome.RetryLater(TimeSpan.Zero, d.Attempt + 1, "interrupted by a host stop")).ToList(), []);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A bug outside what the processor catches per message: every message of the batch is retried, then
            // dead-lettered ProcessingFailed once its attempts ran out.
            LogUnexpected(logger, ex, events.Count);
            var bug = policy.DescribeBug(ex);
            return new BatchDecision(events.Select(d => policy.Finish(policy.Bug(bug, d.Attempt), d.EventMessageId, d.Attempt)).ToList(), []);
        }
    }

    /// <summary>
    /// One tracker message (spec 8.3): asks Klaviyo about its job; while the job runs (or Klaviyo cannot answer now) a
    /// tracker for the next poll is queued before this one is completed; once it ended, its parked messages are taken
    /// back and settled by the verdict of their profile; any still parked after that (locked elsewhere, or given back)
    /// get a tracker of their own after the lock has run out; then the tracker is completed. A tracker that cannot be
    /// read is dead-lettered, and the parked messages it still names are retried as a bug in the relay.
    /// </summary>
    private async Task<IReadOnlyList<RelayOutcome>> TrackAsync<TMessage>(IRelaySettlement<TMessage> settlement, RelayDelivery<TMessage> delivery, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        TrackerStep step;
        IReadOnlyList<RelayOutcome> outcomes = [];
        // The job is asked about only until the batch's deadline (its import errors may take many pages); past it, or
        // without time for a status and a page, the tracker comes back in a later batch (left to its lock instead, each
        // lapse would spend one of its deliveries).
        using var budget = new CancellationTokenSource(Max(deadline - time.GetUtcNow(), TimeSpan.Zero), time);
        using var asking = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, budget.Token);
        try
        {
            step = policy.NotReady(delivery.Attempt) is RelayOutcome.RetryLater notReady
                ? tracker.Postpone(delivery.Body, notReady.Delay) // no Klaviyo call with an unresolved key: a 401 would dead-letter the job's messages
                : !policy.CanStart(options.Value.CallTimeout * 2, deadline)
                    ? tracker.Postpone(delivery.Body)
                    : await tracker.CheckAsync(delivery.Body, asking.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return outcomes; // left to its lock: handed out again, the job asked about again
        }
        catch (OperationCanceledException) when (budget.IsCancellationRequested)
        {
            step = tracker.Postpone(delivery.Body);
        }
        using var bounded = new CancellationTokenSource(SettlementTimeout, time);
        try
        {
            switch (step)
            {
                case TrackerStep.PollAgain again:
                    await settlement.SendLaterAsync(again.Next, again.Due, bounded.Token).ConfigureAwait(false);
                    break;
                case TrackerStep.Settle settle:
                    var parked = await settlement.ReceiveDeferredAsync(settle.Sequences, bounded.Token).ConfigureAwait(false);
                    var settled = parked.Select(d => (Delivery: d, Outcome: policy.Finish(policy.FromVerdict(settle.Verdicts[d.Sequence], d.Attempt), d.EventMessageId, d.Attempt))).ToList();
                    outcomes = await SettleOrderedAsync(settlement, BarrierCheck.AllGo, settled, 0, bounded.Token).ConfigureAwait(false);
                    // Never done while one is still parked (locked elsewhere, or given back): a parked message nobody
                    // holds the sequence number of stays in the queue for good.
                    var left = await settlement.StillParkedAsync(settle.Sequences, bounded.Token).ConfigureAwait(false);
                    if (left.Count > 0 && settle.Ticket is { } ticket)
                    {
                        var recheck = tracker.Recheck(ticket, left);
                        LogStillParked(logger, ticket.JobId, left.Count, ImportJobTracker.AfterLock);
                        await settlement.SendLaterAsync(recheck.Next, recheck.Due, bounded.Token).ConfigureAwait(false);
                    }
                    break;
                case TrackerStep.Unreadable unreadable:
                    LogTrackerUnreadable(logger, unreadable.Reason, unreadable.Sequences.Count);
                    if (unreadable.Sequences.Count > 0)
                    {
                        // Not the messages' fault: retried as a bug in the relay (ProcessingFailed once attempts run out).
                        var cause = "its import job tracker could not be read: " + unreadable.Reason;
                        var taken = await settlement.ReceiveDeferredAsync(unreadable.Sequences, bounded.Token).ConfigureAwait(false);
                        outcomes = await SettleEachAsync(settlement, taken.Select(d => (Delivery: d, Outcome: policy.Finish(policy.Bug(cause, d.Attempt), d.EventMessageId, d.Attempt))).ToList(), bounded.Token).ConfigureAwait(false);
                    }
                    await settlement.DeadLetterAsync([delivery.Message], nameof(DeadLetterReason.MalformedMessage),
                        OutcomePolicy.Bounded($"import job tracker: {unreadable.Reason}; it names {unreadable.Sequences.Count} parked message(s), those still parked were taken back and retried"), bounded.Token).ConfigureAwait(false);
                    return outcomes;
            }
            await settlement.CompleteAsync([delivery.Message], bounded.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException && !bounded.IsCancellationRequested)
        {
            // Given back: the next delivery of the tracker asks again; parked messages already settled are skipped then.
            await GiveBackEachAsync(settlement, [delivery], "track", ex).ConfigureAwait(false);
        }
        return outcomes;
    }

    /// <summary>The ordered messages of a batch (by index into <paramref name="deliveries"/>) through the barrier. The
    /// barrier's own failures hold (its implementation decides); a bug in it holds every ordered message of the batch.</summary>
    private async Task<BarrierCheck> CheckOrderingAsync<TMessage>(IReadOnlyList<RelayDelivery<TMessage>> deliveries, IReadOnlyList<int> events, CancellationToken cancellationToken)
    {
        var ordered = events.Where(i => deliveries[i].Ordering is not null).Select(i => OrderedMessage.Of(i, deliveries[i].Ordering!, deliveries[i].Sequence)).ToList();
        if (ordered.Count == 0)
        {
            return BarrierCheck.AllGo;
        }
        try
        {
            return await _barrier.CheckAsync(ordered, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogBarrierFailed(logger, ex.GetType().Name, ordered.Count);
            return new BarrierCheck(ordered.ToDictionary(m => m.Index, _ => new HeldMessage(OutcomePolicy.PutOffFloor * 15, "held: the ordering barrier failed")));
        }
    }

    /// <summary>Settles the messages, telling the barrier first which ordered ones become blockers and then which release
    /// their key. The last <paramref name="heldCount"/> of <paramref name="settled"/> are the ones the barrier held.</summary>
    private async Task<IReadOnlyList<RelayOutcome>> SettleOrderedAsync<TMessage>(IRelaySettlement<TMessage> settlement, BarrierCheck check, IReadOnlyList<(RelayDelivery<TMessage> Delivery, RelayOutcome Outcome)> settled, int heldCount, CancellationToken cancellationToken)
    {
        var ordered = Enumerable.Range(0, settled.Count).Where(i => settled[i].Delivery.Ordering is not null).ToList();
        OrderedSettlement Of(int i, RelayOutcome outcome) => new(OrderedMessage.Of(-1, settled[i].Delivery.Ordering!, settled[i].Delivery.Sequence), outcome, i >= settled.Count - heldCount);
        if (ordered.Count > 0)
        {
            await _barrier.BeforeSettleAsync(check, ordered.Select(i => Of(i, settled[i].Outcome)).ToList(), cancellationToken).ConfigureAwait(false);
        }
        var results = await SettleEachAsync(settlement, settled, cancellationToken).ConfigureAwait(false);
        if (ordered.Count > 0)
        {
            await _barrier.AfterSettleAsync(check, ordered.Select(i => Of(i, results[i])).ToList(), cancellationToken).ConfigureAwait(false);
        }
        return results;
    }

    /// <summary>Settles each message by its outcome, one queue call per distinct action; a group whose call fails is
    /// given back message by message.</summary>
    /// <returns>The outcome each message was settled with, in order: a message given back counts as a retry of the
    /// same attempt.</returns>
    private async Task<IReadOnlyList<RelayOutcome>> SettleEachAsync<TMessage>(IRelaySettlement<TMessage> settlement, IReadOnlyList<(RelayDelivery<TMessage> Delivery, RelayOutcome Outcome)> settled, CancellationToken cancellationToken)
    {
        var results = settled.Select(s => s.Outcome).ToArray();
        foreach (var group in Enumerable.Range(0, settled.Count).GroupBy(i => SettlementKey(settled[i].Outcome)))
        {
            var outcome = settled[group.First()].Outcome;
            try
            {
                await policy.SettleAsync(settlement, group.Select(i => settled[i].Delivery.Message).ToList(), outcome, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException && !cancellationToken.IsCancellationRequested)
            {
                var recorded = await GiveBackEachAsync(settlement, group.Select(i => settled[i].Delivery).ToList(), ActionOf(outcome), ex).ConfigureAwait(false);
                foreach (var i in group)
                {
                    results[i] = new RelayOutcome.RetryLater(GiveBackDelay, settled[i].Delivery.Attempt, $"given back after a settlement failure ({recorded})");
                }
            }
        }
        return results;
    }

    private static object SettlementKey(RelayOutcome outcome) => outcome switch
    {
        RelayOutcome.Delivered or RelayOutcome.Skipped => "complete",
        RelayOutcome.RetryLater retry => (retry.NextAttempt, retry.Delay),
        RelayOutcome.DeadLetter dead => (dead.Reason, dead.Description),
        RelayOutcome.AwaitingJob => "defer",
        RelayOutcome.Gathered => "gather",
        _ => outcome,
    };

    /// <summary>
    /// A settlement call threw (the broker refused the copy, the complete or the dead letter): wait
    /// <see cref="GiveBackDelay"/> (a broker hiccup must not become an instant redelivery loop that spends the delivery
    /// count in a second), then give each message back with <see cref="SettlementFailureProperty"/> so it is delivered
    /// again; past the queue's maxDeliveryCount the broker dead-letters it as <c>MaxDeliveryCountExceeded</c>. One that
    /// cannot be given back (its lock already gone) is left to its lock and does not stop the others.
    /// </summary>
    /// <returns>What <see cref="SettlementFailureProperty"/> recorded: the action and the exception type, never its message.</returns>
    private async Task<string> GiveBackEachAsync<TMessage>(IRelaySettlement<TMessage> settlement, IReadOnlyList<RelayDelivery<TMessage>> deliveries, string action, Exception failure)
    {
        var recorded = $"{action}: {failure.GetType().Name}";
        LogSettlementFailed(logger, recorded, deliveries.Count == 1 ? deliveries[0].EventMessageId : $"{deliveries.Count} messages", deliveries[0].Attempt, GiveBackDelay);
        using var bounded = new CancellationTokenSource(GiveBackDelay + GiveBackTimeout, time);
        await Task.Delay(GiveBackDelay, time, bounded.Token).ConfigureAwait(false);
        foreach (var delivery in deliveries)
        {
            metrics.SettlementFailed(action);
            try
            {
                await settlement.GiveBackAsync([delivery.Message], new Dictionary<string, object> { [SettlementFailureProperty] = recorded }, bounded.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                LogGiveBackFailed(logger, delivery.EventMessageId, ex.GetType().Name);
            }
        }
        return recorded;
    }

    private static string ActionOf(RelayOutcome? outcome) => outcome switch
    {
        RelayOutcome.Delivered or RelayOutcome.Skipped => "complete",
        RelayOutcome.RetryLater => "retry",
        RelayOutcome.AwaitingJob => "defer",
        RelayOutcome.Gathered => "gather",
        _ => "dead-letter",
    };

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    [LoggerMessage(EventId = 3210, Level = LogLevel.Warning, Message = "Settling event {MessageId} attempt {Attempt} failed ({SettlementFailure}); it is given back after {Delay} and delivered again")]
    private static partial void LogSettlementFailed(ILogger logger, string settlementFailure, string messageId, int attempt, TimeSpan delay);

    [LoggerMessage(EventId = 3211, Level = LogLevel.Error, Message = "The tracker of import job {JobId} could not be queued ({ExceptionType}); its messages are retried instead of parked")]
    private static partial void LogTrackerFailed(ILogger logger, string jobId, string exceptionType);

    [LoggerMessage(EventId = 3212, Level = LogLevel.Error, Message = "An import job tracker could not be read ({Reason}); it is dead-lettered and the {Count} parked message(s) it names are retried")]
    private static partial void LogTrackerUnreadable(ILogger logger, string reason, int count);

    [LoggerMessage(EventId = 3214, Level = LogLevel.Warning, Message = "Import job {JobId}: {Count} message(s) are still parked after settling (locked elsewhere, or given back); its tracker comes back for them in {Delay}")]
    private static partial void LogStillParked(ILogger logger, string jobId, int count, TimeSpan delay);

    [LoggerMessage(EventId = 3213, Level = LogLevel.Warning, Message = "Could not give back {MessageId} ({ExceptionType}); it is delivered again when its lock lapses")]
    private static partial void LogGiveBackFailed(ILogger logger, string messageId, string exceptionType);

    [LoggerMessage(EventId = 3230, Level = LogLevel.Warning, Message = "{Count} message(s) parked for a fuller call could not be taken back ({ExceptionType}); their marker takes them back")]
    private static partial void LogTakeBackFailed(ILogger logger, int count, string exceptionType);

    [LoggerMessage(EventId = 3306, Level = LogLevel.Error, Message = "The ordering barrier failed ({ExceptionType}); the batch's {Count} ordered message(s) are held (put off, no attempt spent)")]
    private static partial void LogBarrierFailed(ILogger logger, string exceptionType, int count);

    [LoggerMessage(EventId = 3201, Level = LogLevel.Warning, Message = "A batch of {Count} message(s) was interrupted by a host stop; their retries are scheduled")]
    private static partial void LogInterrupted(ILogger logger, int count);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Error, Message = "Relaying a batch of {Count} message(s) failed unexpectedly (a bug in the relay)")]
    private static partial void LogUnexpected(ILogger logger, Exception exception, int count);
}
