using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// Runs the processor for a received message and settles it: the one translation of a <see cref="RelayOutcome"/> into
/// queue actions, shared by <see cref="RelayFunction"/> (Service Bus) and local mode's worker.
/// </summary>
internal sealed partial class RelaySettler(
    RelayProcessor processor,
    RetrySchedule schedule,
    IOptions<RelayOptions> options,
    TimeProvider time,
    ILogger<RelaySettler> logger,
    Diagnostics.RelayMetrics metrics)
{
    /// <summary>Reason of a dead letter caused by the relay's own bug once attempts ran out (spec section 6).</summary>
    public static readonly string ProcessingFailed = nameof(DeadLetterReason.ProcessingFailed);

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
    /// Processes and settles one message. A host stop that cancels the work mid-plan still settles it (a retry now,
    /// attempt + 1: every call is idempotent), and an unexpected exception is retried like a transient failure until
    /// attempts run out, then dead-lettered as <see cref="ProcessingFailed"/>. Settlement runs under its own bounded
    /// timeout, not the host's token: once Klaviyo has the event, completing beats a redelivery.
    /// </summary>
    /// <returns>The outcome the message was settled with (a retry of the same attempt when settling failed and it was
    /// given back, see <see cref="GiveBackAsync"/>); null when it was dead-lettered as <see cref="ProcessingFailed"/>.</returns>
    public async Task<RelayOutcome?> RelayAsync<TMessage>(IRelaySettlement<TMessage> settlement, RelayDelivery<TMessage> delivery, CancellationToken cancellationToken)
    {
        RelayOutcome? outcome;
        string? processingFailed = null;
        try
        {
            outcome = await processor.ProcessAsync(delivery.Body, delivery.EventMessageId, delivery.Attempt, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogInterrupted(logger, delivery.EventMessageId, delivery.Attempt);
            outcome = new RelayOutcome.RetryLater(TimeSpan.Zero, delivery.Attempt + 1, "interrupted by a host stop");
        }
        catch (Exception ex)
        {
            LogUnexpected(logger, ex, delivery.EventMessageId, delivery.Attempt);
            var bug = processor.DescribeBug(ex); // the key cut out, as the processor does for its own bugs
            var maxAttempts = options.Value.MaxAttempts;
            outcome = delivery.Attempt < maxAttempts ? new RelayOutcome.RetryLater(schedule.DelayAfter(delivery.Attempt, null), delivery.Attempt + 1, bug) : null;
            processingFailed = Bounded($"{maxAttempts} attempt(s) failed in the relay's own code; last: {bug}");
        }

        using var bounded = new CancellationTokenSource(SettlementTimeout, time);
        try
        {
            if (outcome is null)
            {
                await settlement.DeadLetterAsync([delivery.Message], ProcessingFailed, processingFailed, bounded.Token).ConfigureAwait(false);
                return null;
            }
            await SettleAsync(settlement, [delivery.Message], outcome, bounded.Token).ConfigureAwait(false);
            return outcome;
        }
        catch (Exception ex) when (!bounded.IsCancellationRequested)
        {
            var recorded = await GiveBackAsync(settlement, delivery, ActionOf(outcome), ex).ConfigureAwait(false);
            return new RelayOutcome.RetryLater(GiveBackDelay, delivery.Attempt, $"given back after a settlement failure ({recorded})");
        }
    }

    /// <summary>
    /// A settlement call threw (the broker refused the copy, the complete or the dead letter): wait
    /// <see cref="GiveBackDelay"/>, then give the message back with <see cref="SettlementFailureProperty"/> so it is
    /// delivered again. Each give-back spends one delivery; past the queue's maxDeliveryCount the broker dead-letters
    /// it as <c>MaxDeliveryCountExceeded</c>. If the give-back throws too, that propagates and the host abandons.
    /// </summary>
    /// <returns>What <see cref="SettlementFailureProperty"/> recorded: the action and the exception type, never its message.</returns>
    private async Task<string> GiveBackAsync<TMessage>(IRelaySettlement<TMessage> settlement, RelayDelivery<TMessage> delivery, string action, Exception failure)
    {
        var recorded = $"{action}: {failure.GetType().Name}";
        LogSettlementFailed(logger, recorded, delivery.EventMessageId, delivery.Attempt, GiveBackDelay);
        metrics.SettlementFailed(action);
        using var bounded = new CancellationTokenSource(GiveBackDelay + GiveBackTimeout, time);
        await Task.Delay(GiveBackDelay, time, bounded.Token).ConfigureAwait(false);
        await settlement.GiveBackAsync([delivery.Message], new Dictionary<string, object> { [SettlementFailureProperty] = recorded }, bounded.Token).ConfigureAwait(false);
        return recorded;
    }

    private static string ActionOf(RelayOutcome? outcome) => outcome switch
    {
        RelayOutcome.Delivered or RelayOutcome.Skipped => "complete",
        RelayOutcome.RetryLater => "retry",
        _ => "dead-letter",
    };

    /// <summary>The translation of spec section 6's table, for one message or a batch with the same outcome.</summary>
    public Task SettleAsync<TMessage>(IRelaySettlement<TMessage> settlement, IReadOnlyList<TMessage> messages, RelayOutcome outcome, CancellationToken cancellationToken) => outcome switch
    {
        RelayOutcome.Delivered or RelayOutcome.Skipped => settlement.CompleteAsync(messages, cancellationToken),
        RelayOutcome.RetryLater retry => settlement.RetryAsync(messages, retry.NextAttempt, time.GetUtcNow() + retry.Delay, cancellationToken),
        RelayOutcome.DeadLetter dead => settlement.DeadLetterAsync(messages, dead.Reason.ToString(), dead.Description, cancellationToken),
        _ => throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}; the message is left to its lock."),
    };

    private static string Bounded(string description) =>
        description.Length <= RelayProcessor.MaxDescriptionLength ? description : description[..(RelayProcessor.MaxDescriptionLength - 1)] + "…";

    [LoggerMessage(EventId = 3210, Level = LogLevel.Warning, Message = "Settling event {MessageId} attempt {Attempt} failed ({SettlementFailure}); it is given back after {Delay} and delivered again")]
    private static partial void LogSettlementFailed(ILogger logger, string settlementFailure, string messageId, int attempt, TimeSpan delay);

    [LoggerMessage(EventId = 3201, Level = LogLevel.Warning, Message = "Event {MessageId} attempt {Attempt} was interrupted by a host stop; a retry is scheduled")]
    private static partial void LogInterrupted(ILogger logger, string messageId, int attempt);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Error, Message = "Relaying {MessageId} attempt {Attempt} failed unexpectedly (a bug in the relay)")]
    private static partial void LogUnexpected(ILogger logger, Exception exception, string messageId, int attempt);
}
