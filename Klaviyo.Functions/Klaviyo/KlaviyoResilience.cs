using System.Net;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>
/// The in-call resilience of spec section 6: a timeout per try, at most <c>Relay__MaxInCallRetries</c> more tries for
/// transient failures, jittered, honouring Retry-After, and never more than <c>Relay__InCallRetryBudget</c> of waiting
/// in all, so the message lock is never at risk. A wait that does not fit the budget is not waited: the transient
/// answer goes back to the processor, which schedules a queue-level retry no sooner than Retry-After.
/// The per-try timeout covers the whole exchange: <see cref="KlaviyoAnswerHandler"/>, inside it, reads the body.
/// </summary>
internal static class KlaviyoResilience
{
    private static readonly ResiliencePropertyKey<TimeSpan> Waited = new("Klaviyo.InCallWaited");
    private static readonly ResiliencePropertyKey<TimeSpan> NextDelay = new("Klaviyo.NextDelay");

    public static void Configure(ResiliencePipelineBuilder<HttpResponseMessage> builder, RelayOptions relay, TimeProvider time, RelayMetrics metrics)
    {
        builder.AddTimeout(relay.CallTimeout);
        if (relay.MaxInCallRetries > 0)
        {
            builder.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = relay.MaxInCallRetries,
                ShouldRetryAfterHeader = false, // handled in ShouldHandle so that it counts against the budget
                ShouldHandle = args => ValueTask.FromResult(ShouldRetry(args.Outcome, args.AttemptNumber, args.Context, relay, time)),
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(args.Context.Properties.GetValue(NextDelay, TimeSpan.Zero)),
                OnRetry = args =>
                {
                    var endpoint = args.Outcome.Result?.RequestMessage?.Options.TryGetValue(KlaviyoRateLimits.EndpointOption, out var e) == true ? e : (KlaviyoEndpoint?)null;
                    metrics.InCallRetry(endpoint);
                    return default;
                },
            });
        }
        builder.AddTimeout(relay.AttemptTimeout);
    }

    private static bool ShouldRetry(Outcome<HttpResponseMessage> outcome, int attemptNumber, ResilienceContext context, RelayOptions relay, TimeProvider time)
    {
        TimeSpan? retryAfter = null;
        if (outcome.Exception is { } exception)
        {
            if (!FailureClassifier.IsTransient(exception))
            {
                return false;
            }
        }
        else if (outcome.Result is { } response)
        {
            if (FailureClassifier.Classify((int)response.StatusCode) != FailureKind.Transient)
            {
                return false;
            }
            retryAfter = RetryAfterHeader.Read(response, time);
            if (retryAfter is null && response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                retryAfter = TimeSpan.FromSeconds(1);
            }
        }
        else
        {
            return false;
        }

        var delay = retryAfter ?? Backoff(relay.InCallRetryDelay, attemptNumber);
        var waited = context.Properties.GetValue(Waited, TimeSpan.Zero);
        if (waited + delay > relay.InCallRetryBudget)
        {
            return false;
        }
        context.Properties.Set(Waited, waited + delay);
        context.Properties.Set(NextDelay, delay);
        return true;
    }

    /// <summary>Exponential with ±25 % jitter: d, 2d, 4d, …</summary>
    private static TimeSpan Backoff(TimeSpan first, int attemptNumber) =>
        first * Math.Pow(2, attemptNumber) * (0.75 + (Random.Shared.NextDouble() * 0.5));
}
