using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// The one home of the outcome rules (spec 6), for the single path, the bulk path and the import job tracker alike:
/// what a Klaviyo answer or a bulk verdict means for a message, attempt accounting (<c>RetriesExhausted</c>,
/// <c>ProcessingFailed</c>), put-offs that spend no attempt and their one-second floor, the lock budget of a batch, the
/// bound on dead-letter descriptions, reporting (one log line and metric per outcome) and the queue action each
/// outcome settles as.
/// </summary>
internal sealed partial class OutcomePolicy(
    RetrySchedule schedule,
    IOptions<RelayOptions> options,
    IOptions<KlaviyoOptions> klaviyoOptions,
    RelayMetrics metrics,
    TimeProvider time,
    ILogger<OutcomePolicy> logger)
{
    /// <summary>Dead-letter descriptions are bounded (Service Bus allows 4 KB); the start holds what matters.</summary>
    public const int MaxDescriptionLength = 1024;

    /// <summary>The shortest put-off: work held back (by the limiter, a lock running short, a resend) comes back no
    /// sooner, so it waits instead of spinning.</summary>
    public static readonly TimeSpan PutOffFloor = TimeSpan.FromSeconds(1);

    /// <summary>A delivery put off because the relay is not ready waits the schedule's second step (about 2 min).</summary>
    private const int NotReadyDelayStep = 2;

    private const string KeyNotResolved = "Klaviyo__PrivateApiKey is an unresolved Key Vault reference (the relay is not ready)";

    private const string OutOfTime = "put off: the batch ran out of its lock time before this call could start";

    // Attempt accounting.

    /// <summary>A transient failure: a retry later as the next attempt, or <c>RetriesExhausted</c> when this was the last.</summary>
    public RelayOutcome RetryOrGiveUp(TimeSpan? retryAfter, string description, int attempt)
    {
        var maxAttempts = options.Value.MaxAttempts;
        return attempt >= maxAttempts
            ? new RelayOutcome.DeadLetter(DeadLetterReason.RetriesExhausted, $"{maxAttempts} attempt(s) failed; last: {description}")
            : new RelayOutcome.RetryLater(schedule.DelayAfter(attempt, retryAfter), attempt + 1, description);
    }

    /// <summary>
    /// An unexpected exception in the relay's own code (spec section 6): not the sender's fault, so never
    /// <c>InvalidEvent</c>. Retried like a transient failure (a fix deployed meanwhile delivers it) and, when attempts
    /// run out, dead-lettered <c>ProcessingFailed</c> with the exception's type and message, the key cut out.
    /// </summary>
    public RelayOutcome Bug(Exception ex, string messageId, int attempt)
    {
        LogBug(logger, ex, messageId, attempt);
        return Bug(DescribeBug(ex), attempt);
    }

    /// <summary>As <see cref="Bug(Exception, string, int)"/> for a bug already logged and described (a whole batch's).</summary>
    public RelayOutcome Bug(string description, int attempt)
    {
        var maxAttempts = options.Value.MaxAttempts;
        return attempt >= maxAttempts
            ? Bounded(new RelayOutcome.DeadLetter(DeadLetterReason.ProcessingFailed, $"{maxAttempts} attempt(s) failed; a bug in the relay, last: {description}"))
            : new RelayOutcome.RetryLater(schedule.DelayAfter(attempt, null), attempt + 1, "a bug in the relay: " + description);
    }

    /// <summary>True when <paramref name="ex"/> is a bug in the relay's own code; the cancellation of this delivery (the
    /// host is stopping: the message stays locked and comes back) is not, nor is running out of memory.</summary>
    public static bool IsBug(Exception ex, CancellationToken cancellationToken) =>
        !(ex is OperationCanceledException && cancellationToken.IsCancellationRequested) && ex is not OutOfMemoryException;

    /// <summary>Put off without spending the attempt (held back, out of lock time, resent): back no sooner than
    /// <see cref="PutOffFloor"/>, or <paramref name="after"/> when later.</summary>
    public static RelayOutcome.RetryLater PutOff(int attempt, string cause, TimeSpan? after = null) =>
        new(after is { } wait && wait > PutOffFloor ? wait : PutOffFloor, attempt, cause);

    /// <summary>Not ready (spec section 6): no Klaviyo call, no dead letter; put off as the same attempt. Null when ready.</summary>
    public RelayOutcome? NotReady(int attempt) =>
        KlaviyoOptionsValidator.IsUnresolvedKeyVaultReference(klaviyoOptions.Value.PrivateApiKey)
            ? new RelayOutcome.RetryLater(schedule.DelayAfter(NotReadyDelayStep, null), attempt, KeyNotResolved)
            : null;

    // What Klaviyo said.

    /// <summary>What an answer means for the message: null when it succeeded (with the id the call had to yield, if any).</summary>
    public RelayOutcome? FromAnswer(KlaviyoRequest request, KlaviyoResponse response, int attempt, bool needsDataId = false) => response switch
    {
        KlaviyoResponse.Success { DataId: null, Unread: { } unread, StatusCode: var status } when needsDataId =>
            RetryOrGiveUp(null, $"POST {request.Path} answered {status}, but {unread} before data.id", attempt),
        KlaviyoResponse.Success { DataId: null } when needsDataId => new RelayOutcome.DeadLetter(
            DeadLetterReason.KlaviyoRejected, $"POST {request.Path} answered 2xx without data.id (the profile id later calls need)"),
        KlaviyoResponse.Success => null,
        KlaviyoResponse.Transient transient => RetryOrGiveUp(transient.RetryAfter, transient.Description, attempt),
        // Klaviyo never saw it: rescheduled for when the limiter has room, the attempt count unchanged (spec 6).
        KlaviyoResponse.HeldBack held => new RelayOutcome.RetryLater(held.RetryAfter, attempt, held.Description),
        KlaviyoResponse.Unauthorized unauthorized => new RelayOutcome.DeadLetter(
            DeadLetterReason.KlaviyoUnauthorized,
            Describe(request, unauthorized.StatusCode, unauthorized.Errors) + " — " + KlaviyoApi.UnauthorizedHint(request.Endpoint)),
        KlaviyoResponse.Rejected rejected => new RelayOutcome.DeadLetter(
            DeadLetterReason.KlaviyoRejected, Describe(request, rejected.StatusCode, rejected.Errors)),
        _ => throw new InvalidOperationException($"Unknown Klaviyo response {response.GetType().Name}."),
    };

    /// <summary>What a bulk verdict means for a message on its <paramref name="attempt"/> (also an ended import job's).</summary>
    public RelayOutcome FromVerdict(BulkVerdict verdict, int attempt) => verdict switch
    {
        BulkVerdict.Delivered => new RelayOutcome.Delivered(1),
        BulkVerdict.DeadLetter dead => new RelayOutcome.DeadLetter(dead.Reason == BulkRefusal.KlaviyoUnauthorized ? DeadLetterReason.KlaviyoUnauthorized : DeadLetterReason.KlaviyoRejected, dead.Description),
        BulkVerdict.RetryLater { SpendsAttempt: false } held => PutOff(attempt, held.Cause, held.RetryAfter),
        BulkVerdict.RetryLater retry => RetryOrGiveUp(retry.RetryAfter, retry.Cause, attempt),
        _ => throw new InvalidOperationException($"No outcome for {verdict.GetType().Name}."),
    };

    // The lock budget: a batch has no lock renewal, so everything happens within the lock taken when it was received.

    /// <summary>The moment a batch received now must have done its Klaviyo calls by, leaving time to settle.</summary>
    public DateTimeOffset BatchDeadline() => time.GetUtcNow() + RelayOptions.MessageLockDuration - RelayOptions.SettlementAllowance;

    /// <summary>True when work that takes at most <paramref name="longest"/> still ends by <paramref name="deadline"/>.</summary>
    public bool CanStart(TimeSpan longest, DateTimeOffset deadline) => time.GetUtcNow() + longest <= deadline;

    /// <summary>What cannot start before the deadline: put off as the same attempt, back in a later batch.</summary>
    public static RelayOutcome.RetryLater OutOfLockTime(int attempt) => PutOff(attempt, OutOfTime);

    // Reporting and settling.

    /// <summary>Logs and counts an outcome, bounding a dead-letter description; every outcome is reported here once.</summary>
    public RelayOutcome Finish(RelayOutcome outcome, string messageId, int attempt)
    {
        switch (outcome)
        {
            case RelayOutcome.Delivered delivered:
                metrics.Delivered();
                Log.Delivered(logger, messageId, attempt, delivered.Calls);
                return outcome;
            case RelayOutcome.Skipped skipped:
                metrics.Skipped();
                Log.Skipped(logger, messageId, skipped.Reason);
                return outcome;
            case RelayOutcome.RetryLater retry when retry.NextAttempt == attempt:
                // Put off without spending an attempt. Held back by the relay's own limiter: counted, not logged per
                // event, so an overloaded relay's log stays flat (held-back calls have their own metric). Not ready
                // (an unresolved Key Vault reference): logged, an operator must act.
                metrics.RetryScheduled(retry.NextAttempt);
                if (retry.Cause == KeyNotResolved)
                {
                    Log.PutOff(logger, messageId, attempt, retry.Delay, retry.Cause);
                }
                return outcome;
            case RelayOutcome.RetryLater retry:
                metrics.RetryScheduled(retry.NextAttempt);
                Log.RetryLater(logger, messageId, attempt, retry.NextAttempt, retry.Delay, retry.Cause);
                return outcome;
            case RelayOutcome.AwaitingJob or RelayOutcome.Gathered:
                return outcome;
            case RelayOutcome.DeadLetter dead:
                var bounded = Bounded(dead);
                metrics.DeadLettered(bounded.Reason);
                Log.DeadLettered(logger, messageId, attempt, bounded.Reason.ToString(), bounded.Description);
                return bounded;
            default:
                throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}.");
        }
    }

    /// <summary>Logs the transform's non-fatal findings for an event (EventId 3005).</summary>
    public void LogWarnings(IReadOnlyList<string> warnings, string messageId)
    {
        foreach (var warning in warnings)
        {
            Log.PlanWarning(logger, messageId, warning);
        }
    }

    /// <summary>The translation of spec section 6's table into queue actions, for messages with the same outcome.</summary>
    public Task SettleAsync<TMessage>(IRelaySettlement<TMessage> settlement, IReadOnlyList<TMessage> messages, RelayOutcome outcome, CancellationToken cancellationToken) => outcome switch
    {
        RelayOutcome.Delivered or RelayOutcome.Skipped => settlement.CompleteAsync(messages, cancellationToken),
        RelayOutcome.RetryLater retry => settlement.RetryAsync(messages, retry.NextAttempt, time.GetUtcNow() + retry.Delay, cancellationToken),
        RelayOutcome.DeadLetter dead => settlement.DeadLetterAsync(messages, dead.Reason.ToString(), Bounded(dead).Description, cancellationToken),
        RelayOutcome.AwaitingJob => settlement.DeferAsync(messages, cancellationToken),
        RelayOutcome.Gathered => settlement.GatherAsync(messages, cancellationToken),
        _ => throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}; the message is left to its lock."),
    };

    /// <summary>The exception's type and message, with this relay's Klaviyo key cut out should a message ever carry it.</summary>
    public string DescribeBug(Exception ex) => DescribeBug(ex, klaviyoOptions.Value.PrivateApiKey);

    /// <summary>The exception's type and message, with <paramref name="secret"/> cut out.</summary>
    public static string DescribeBug(Exception ex, string? secret)
    {
        var message = ex.Message;
        if (!string.IsNullOrEmpty(secret))
        {
            message = message.Replace(secret, "[redacted]", StringComparison.Ordinal);
        }
        return $"{ex.GetType().FullName}: {message}";
    }

    private static RelayOutcome.DeadLetter Bounded(RelayOutcome.DeadLetter dead) => dead with { Description = Bounded(dead.Description) };

    /// <summary>A dead-letter description within <see cref="MaxDescriptionLength"/>.</summary>
    public static string Bounded(string description) =>
        description.Length <= MaxDescriptionLength ? description : description[..(MaxDescriptionLength - 1)] + "…";

    // A GET's query is left out: a lookup's filter carries the person's id.
    private static string Describe(KlaviyoRequest request, int status, IReadOnlyList<KlaviyoError> errors) =>
        $"{request.Method.Method} {request.Path.Split('?')[0]} answered {status}" + (errors.Count == 0 ? "" : ": " + KlaviyoResponse.Describe(errors));

    [LoggerMessage(EventId = 3008, Level = LogLevel.Error, Message = "Event {MessageId} attempt {Attempt} hit a bug in the relay's own code")]
    private static partial void LogBug(ILogger logger, Exception exception, string messageId, int attempt);
}
