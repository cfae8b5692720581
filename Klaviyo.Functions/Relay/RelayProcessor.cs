using Klaviyo.Functions.Calls;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// One message on its own (spec section 6): transform, write its single calls (<see cref="KlaviyoCalls"/>), call
/// Klaviyo in order and return a <see cref="RelayOutcome"/> reported through the <see cref="OutcomePolicy"/>. No I/O
/// besides Klaviyo; the caller settles.
/// </summary>
internal sealed class RelayProcessor(KlaviyoTransformer transformer, KlaviyoClient klaviyo, OutcomePolicy policy, DeletionProcessor deletions)
{
    /// <param name="body">The queue message body: the event as UTF-8 JSON.</param>
    /// <param name="messageId">The event's messageId (for logs).</param>
    /// <param name="attempt">1-based attempt number of this delivery.</param>
    public Task<RelayOutcome> ProcessAsync(ReadOnlyMemory<byte> body, string messageId, int attempt, CancellationToken cancellationToken = default)
    {
        if (policy.NotReady(attempt) is { } notReady)
        {
            return Task.FromResult(policy.Finish(notReady, messageId, attempt));
        }
        TransformResult result;
        try
        {
            result = transformer.Transform(body.Span);
        }
        catch (Exception ex) when (OutcomePolicy.IsBug(ex, cancellationToken))
        {
            return Task.FromResult(policy.Finish(policy.Bug(ex, messageId, attempt), messageId, attempt));
        }
        return result switch
        {
            TransformResult.Planned planned => DeliverAsync(planned.Parts, messageId, attempt, cancellationToken),
            _ => Task.FromResult(policy.Finish(Decided(result), messageId, attempt)),
        };
    }

    /// <summary>The outcome of a transform result that needs no Klaviyo call: skipped, <c>InvalidEvent</c>, <c>MalformedMessage</c>.</summary>
    public static RelayOutcome Decided(TransformResult result) => result switch
    {
        TransformResult.Skipped skipped => new RelayOutcome.Skipped(skipped.Reason),
        TransformResult.Invalid invalid => new RelayOutcome.DeadLetter(DeadLetterReason.InvalidEvent, invalid.Message),
        TransformResult.Malformed malformed => new RelayOutcome.DeadLetter(DeadLetterReason.MalformedMessage, malformed.Reason),
        _ => throw new InvalidOperationException($"{result.GetType().Name} needs Klaviyo calls."),
    };

    /// <summary>Delivers a message's parts with its single calls (a deletion's depend on its lookup: <see cref="DeletionProcessor"/>).</summary>
    public Task<RelayOutcome> DeliverAsync(DeliveryParts parts, string messageId, int attempt, CancellationToken cancellationToken = default) => parts is DeletionParts deletion
        ? deletions.DeliverAsync(deletion, messageId, attempt, cancellationToken)
        : ExecuteAsync(KlaviyoCalls.SinglePlan(parts), messageId, attempt, cancellationToken);

    /// <summary>Runs a plan's calls in order. Any failure ends the plan; a retry later re-runs it whole (every call is idempotent).</summary>
    public async Task<RelayOutcome> ExecuteAsync(RequestPlan plan, string messageId, int attempt, CancellationToken cancellationToken = default)
    {
        try
        {
            return policy.Finish(await RunPlanAsync(plan, messageId, attempt, cancellationToken).ConfigureAwait(false), messageId, attempt);
        }
        catch (Exception ex) when (OutcomePolicy.IsBug(ex, cancellationToken))
        {
            return policy.Finish(policy.Bug(ex, messageId, attempt), messageId, attempt);
        }
    }

    private async Task<RelayOutcome> RunPlanAsync(RequestPlan plan, string messageId, int attempt, CancellationToken cancellationToken)
    {
        policy.LogWarnings(plan.Warnings, messageId);
        string? profileId = null;
        var calls = 0;
        foreach (var step in plan.Steps)
        {
            var (failed, dataId) = await SendStepAsync(step, profileId, attempt, cancellationToken).ConfigureAwait(false);
            calls++;
            if (failed is not null)
            {
                return failed;
            }
            if (step.YieldsProfileId)
            {
                profileId = dataId;
            }
        }
        return new RelayOutcome.Delivered(calls);
    }

    /// <summary>Sends one step of a plan and reads its answer: a failure outcome (not yet reported), or null and the
    /// answer's <c>data.id</c> (the profile id when the step yields one).</summary>
    public async Task<(RelayOutcome? Failed, string? DataId)> SendStepAsync(PlanStep step, string? profileId, int attempt, CancellationToken cancellationToken)
    {
        var request = step.Build(profileId);
        var response = await klaviyo.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return (policy.FromAnswer(request, response, attempt, step.YieldsProfileId), (response as KlaviyoResponse.Success)?.DataId);
    }
}
