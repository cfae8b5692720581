using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// Decides what happens to one queue message (spec section 6): transform, call Klaviyo in plan order, and return a
/// <see cref="RelayOutcome"/>. Logs and counts every outcome. No I/O besides Klaviyo; the function settles.
/// </summary>
internal sealed partial class RelayProcessor(
    KlaviyoTransformer transformer,
    KlaviyoClient klaviyo,
    RetrySchedule schedule,
    IOptions<RelayOptions> options,
    IOptions<KlaviyoOptions> klaviyoOptions,
    RelayMetrics metrics,
    ILogger<RelayProcessor> logger)
{
    /// <summary>Dead-letter descriptions are bounded (Service Bus allows 4 KB); the start holds what matters.</summary>
    public const int MaxDescriptionLength = 1024;

    /// <summary>A delivery put off because the relay is not ready waits the schedule's second step (about 2 min).</summary>
    private const int NotReadyDelayStep = 2;

    private const string KeyNotResolved = "Klaviyo__PrivateApiKey is an unresolved Key Vault reference (the relay is not ready)";

    /// <param name="body">The queue message body: the event as UTF-8 JSON.</param>
    /// <param name="messageId">The event's messageId (for logs).</param>
    /// <param name="attempt">1-based attempt number of this delivery.</param>
    public Task<RelayOutcome> ProcessAsync(ReadOnlyMemory<byte> body, string messageId, int attempt, CancellationToken cancellationToken = default)
    {
        if (NotReady(messageId, attempt) is { } notReady)
        {
            return Task.FromResult(notReady);
        }
        TransformResult result;
        try
        {
            result = transformer.Transform(body.Span);
        }
        catch (Exception ex) when (IsBug(ex, cancellationToken))
        {
            return Task.FromResult(Finish(Failed(ex, messageId, attempt), messageId, attempt));
        }
        return result switch
        {
            TransformResult.Planned planned => ExecuteAsync(planned.Plan, messageId, attempt, cancellationToken),
            TransformResult.Skipped skipped => Task.FromResult(Finish(new RelayOutcome.Skipped(skipped.Reason), messageId, attempt)),
            TransformResult.Invalid invalid => Task.FromResult(Finish(new RelayOutcome.DeadLetter(DeadLetterReason.InvalidEvent, invalid.Message), messageId, attempt)),
            TransformResult.Malformed malformed => Task.FromResult(Finish(new RelayOutcome.DeadLetter(DeadLetterReason.MalformedMessage, malformed.Reason), messageId, attempt)),
            _ => throw new InvalidOperationException($"Unknown transform result {result.GetType().Name}."),
        };
    }

    /// <summary>Not ready (spec section 6): no Klaviyo call, no dead letter; put off as the same attempt. Null when ready.</summary>
    internal RelayOutcome? NotReady(string messageId, int attempt) =>
        KlaviyoOptionsValidator.IsUnresolvedKeyVaultReference(klaviyoOptions.Value.PrivateApiKey)
            ? Finish(new RelayOutcome.RetryLater(schedule.DelayAfter(NotReadyDelayStep, null), attempt, KeyNotResolved), messageId, attempt)
            : null;

    /// <summary>Runs a plan's calls in order. Any failure ends the plan; a retry later re-runs it whole (every call is idempotent).</summary>
    public async Task<RelayOutcome> ExecuteAsync(RequestPlan plan, string messageId, int attempt, CancellationToken cancellationToken = default)
    {
        try
        {
            return await RunPlanAsync(plan, messageId, attempt, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsBug(ex, cancellationToken))
        {
            return Finish(Failed(ex, messageId, attempt), messageId, attempt);
        }
    }

    private async Task<RelayOutcome> RunPlanAsync(RequestPlan plan, string messageId, int attempt, CancellationToken cancellationToken)
    {
        LogWarnings(plan.Warnings, messageId);

        string? profileId = null;
        var calls = 0;
        foreach (var step in plan.Steps)
        {
            var (failed, dataId) = await SendStepAsync(step, profileId, attempt, cancellationToken).ConfigureAwait(false);
            calls++;
            if (failed is not null)
            {
                return Finish(failed, messageId, attempt);
            }
            if (step.YieldsProfileId)
            {
                profileId = dataId;
            }
        }
        return Finish(new RelayOutcome.Delivered(calls), messageId, attempt);
    }

    /// <summary>Logs the transform's non-fatal findings for an event (EventId 3005).</summary>
    internal void LogWarnings(IReadOnlyList<string> warnings, string messageId)
    {
        foreach (var warning in warnings)
        {
            Log.PlanWarning(logger, messageId, warning);
        }
    }

    /// <summary>Sends one step of a plan and reads its answer: a failure outcome (not yet reported), or null and the
    /// answer's <c>data.id</c> (the profile id when the step yields one).</summary>
    internal async Task<(RelayOutcome? Failed, string? DataId)> SendStepAsync(PlanStep step, string? profileId, int attempt, CancellationToken cancellationToken)
    {
        var request = step.Build(profileId);
        var response = await klaviyo.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return (Read(request, response, attempt, step.YieldsProfileId), (response as KlaviyoResponse.Success)?.DataId);
    }

    /// <summary>What an answer means for the message: null when it succeeded (with the id the step needed, if any).</summary>
    internal RelayOutcome? Read(KlaviyoRequest request, KlaviyoResponse response, int attempt, bool needsDataId = false) => response switch
    {
        KlaviyoResponse.Success { DataId: null, Unread: { } unread, StatusCode: var status } when needsDataId =>
            RetryOrGiveUp(new KlaviyoResponse.Transient(null, null, $"POST {request.Path} answered {status}, but {unread} before data.id"), attempt),
        KlaviyoResponse.Success { DataId: null } when needsDataId => new RelayOutcome.DeadLetter(
            DeadLetterReason.KlaviyoRejected, $"POST {request.Path} answered 2xx without data.id (the profile id later calls need)"),
        KlaviyoResponse.Success => null,
        KlaviyoResponse.Transient transient => RetryOrGiveUp(transient, attempt),
        // Klaviyo never saw it: rescheduled for when the limiter has room, the attempt count unchanged (spec 6).
        KlaviyoResponse.HeldBack held => new RelayOutcome.RetryLater(held.RetryAfter, attempt, held.Description),
        KlaviyoResponse.Unauthorized unauthorized => new RelayOutcome.DeadLetter(
            DeadLetterReason.KlaviyoUnauthorized,
            Describe(request, unauthorized.StatusCode, unauthorized.Errors) + " — check Klaviyo__PrivateApiKey and its scopes"),
        KlaviyoResponse.Rejected rejected => new RelayOutcome.DeadLetter(
            DeadLetterReason.KlaviyoRejected, Describe(request, rejected.StatusCode, rejected.Errors)),
        _ => throw new InvalidOperationException($"Unknown Klaviyo response {response.GetType().Name}."),
    };

    private RelayOutcome RetryOrGiveUp(KlaviyoResponse.Transient transient, int attempt) => RetryOrGiveUp(transient.RetryAfter, transient.Description, attempt);

    /// <summary>A retry later as the next attempt, or <c>RetriesExhausted</c> when this was the last.</summary>
    internal RelayOutcome RetryOrGiveUp(TimeSpan? retryAfter, string description, int attempt)
    {
        var maxAttempts = options.Value.MaxAttempts;
        if (attempt >= maxAttempts)
        {
            return new RelayOutcome.DeadLetter(
                DeadLetterReason.RetriesExhausted, $"{maxAttempts} attempt(s) failed; last: {description}");
        }
        return new RelayOutcome.RetryLater(schedule.DelayAfter(attempt, retryAfter), attempt + 1, description);
    }

    // Cancellation of this delivery (the host is stopping) is not a bug: the message stays locked and comes back.
    private static bool IsBug(Exception ex, CancellationToken cancellationToken) =>
        !(ex is OperationCanceledException && cancellationToken.IsCancellationRequested) && ex is not OutOfMemoryException;

    /// <summary>
    /// An unexpected exception in the relay's own code (spec section 6): not the sender's fault, so never
    /// <c>InvalidEvent</c>. The message is retried like a transient failure (a fix deployed meanwhile delivers it) and,
    /// when attempts run out, dead-lettered <c>ProcessingFailed</c> with the exception's type and message.
    /// </summary>
    internal RelayOutcome Failed(Exception ex, string messageId, int attempt)
    {
        LogBug(logger, ex, messageId, attempt);
        var description = DescribeBug(ex, transformer.Options.PrivateApiKey);
        var maxAttempts = options.Value.MaxAttempts;
        if (attempt >= maxAttempts)
        {
            return new RelayOutcome.DeadLetter(
                DeadLetterReason.ProcessingFailed, $"{maxAttempts} attempt(s) failed; a bug in the relay, last: {description}");
        }
        return new RelayOutcome.RetryLater(schedule.DelayAfter(attempt, null), attempt + 1, "a bug in the relay: " + description);
    }

    /// <summary><see cref="DescribeBug(Exception, string?)"/> with this relay's key, for a bug caught outside the processor.</summary>
    internal string DescribeBug(Exception ex) => DescribeBug(ex, transformer.Options.PrivateApiKey);

    /// <summary>The exception's type and message, with the Klaviyo key cut out should a message ever carry it.</summary>
    public static string DescribeBug(Exception ex, string? secret)
    {
        var message = ex.Message;
        if (!string.IsNullOrEmpty(secret))
        {
            message = message.Replace(secret, "[redacted]", StringComparison.Ordinal);
        }
        return $"{ex.GetType().FullName}: {message}";
    }

    [LoggerMessage(EventId = 3008, Level = LogLevel.Error, Message = "Event {MessageId} attempt {Attempt} hit a bug in the relay's own code")]
    private static partial void LogBug(ILogger logger, Exception exception, string messageId, int attempt);

    private static string Describe(KlaviyoRequest request, int status, IReadOnlyList<KlaviyoError> errors) =>
        $"POST {request.Path} answered {status}" + (errors.Count == 0 ? "" : ": " + KlaviyoResponse.Describe(errors));

    /// <summary>Logs and counts an outcome (bounding a dead-letter description); the one place outcomes are reported.</summary>
    internal RelayOutcome Finish(RelayOutcome outcome, string messageId, int attempt)
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
            case RelayOutcome.AwaitingJob:
                return outcome;
            case RelayOutcome.DeadLetter dead:
                var bounded = dead.Description.Length <= MaxDescriptionLength ? dead : dead with { Description = dead.Description[..(MaxDescriptionLength - 1)] + "…" };
                metrics.DeadLettered(bounded.Reason);
                Log.DeadLettered(logger, messageId, attempt, bounded.Reason.ToString(), bounded.Description);
                return bounded;
            default:
                throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}.");
        }
    }
}
