
namespace Klaviyo.Functions.Bulk;

/// <summary>What a bulk answer means for one message it carried (spec 8.2, 8.3).</summary>
internal abstract record BulkVerdict
{
    private BulkVerdict() { }

    /// <summary>Klaviyo accepted the message's part of the call.</summary>
    public sealed record Delivered : BulkVerdict;

    /// <summary>Dead-letter with <paramref name="Reason"/> (<c>KlaviyoRejected</c>, <c>KlaviyoUnauthorized</c>) and Klaviyo's detail.</summary>
    public sealed record DeadLetter(BulkRefusal Reason, string Description) : BulkVerdict;

    /// <summary>
    /// Try again later, no sooner than <paramref name="RetryAfter"/>. <paramref name="SpendsAttempt"/> is false when
    /// Klaviyo never refused it (held back by the relay's limiter, spec 6).
    /// </summary>
    public sealed record RetryLater(TimeSpan? RetryAfter, string Cause, bool SpendsAttempt = true) : BulkVerdict;

    /// <summary>Not refused itself: send again at once in a call without the refused entries.</summary>
    public sealed record Resend : BulkVerdict;

    /// <summary>The call was refused as a whole without naming an entry: send this message on its own.</summary>
    public sealed record SendSingly(string Cause) : BulkVerdict;

    /// <summary>An asynchronous job has not finished; nothing is settled yet.</summary>
    public sealed record Pending : BulkVerdict;
}

/// <summary>Why Klaviyo refused a message's part of a bulk call for good; the relay dead-letters it under the same name.</summary>
internal enum BulkRefusal
{
    /// <summary>A non-retryable answer about the message's entry or profile (400, an import error).</summary>
    KlaviyoRejected,
    /// <summary>401 or 403: the key is wrong or lacks the endpoint's scope.</summary>
    KlaviyoUnauthorized,
}
