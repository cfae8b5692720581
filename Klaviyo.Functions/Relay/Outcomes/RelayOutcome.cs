namespace Klaviyo.Functions.Relay;

/// <summary>Why a message was dead-lettered (spec section 6). The names are the dead-letter reasons on the queue.</summary>
internal enum DeadLetterReason
{
    /// <summary>A permanent error of spec sections 4–5 (for example no user identifier, a bad <c>value</c>).</summary>
    InvalidEvent,
    /// <summary>The body is not an event at all (not JSON, not an object).</summary>
    MalformedMessage,
    /// <summary>Klaviyo answered with a non-retryable failure (400, 404, 409, 410, 422, 3xx, a 2xx without the expected id).</summary>
    KlaviyoRejected,
    /// <summary>Klaviyo answered 401 or 403: the key is wrong or lacks a scope.</summary>
    KlaviyoUnauthorized,
    /// <summary>Transient failures on every one of <c>Relay__MaxAttempts</c> attempts.</summary>
    RetriesExhausted,
    /// <summary>A bug in the relay's own code (an unexpected exception) on every one of <c>Relay__MaxAttempts</c> attempts.</summary>
    ProcessingFailed,
}

/// <summary>What the relay decided for one queue message; the function only translates it into a settlement.</summary>
internal abstract record RelayOutcome
{
    private RelayOutcome() { }

    /// <summary>Every Klaviyo call answered 2xx: complete.</summary>
    public sealed record Delivered(int Calls) : RelayOutcome;

    /// <summary>Deliberately not sent (page without SendPageAsTrack, alias): complete.</summary>
    public sealed record Skipped(string Reason) : RelayOutcome;

    /// <summary>A transient failure: schedule a copy after <paramref name="Delay"/> as attempt <paramref name="NextAttempt"/>, then complete.
    /// <paramref name="NextAttempt"/> equal to the current attempt puts the delivery off without spending an attempt (relay not ready).</summary>
    public sealed record RetryLater(TimeSpan Delay, int NextAttempt, string Cause) : RelayOutcome;

    /// <summary>Handed to Klaviyo in import job <paramref name="JobId"/>, not yet confirmed (spec 8.3): parked (deferred)
    /// until the job's tracker settles it.</summary>
    public sealed record AwaitingJob(string JobId) : RelayOutcome;

    /// <summary>Held back for a fuller bulk call (spec 8): kept (leased locally, deferred on Service Bus) and relayed
    /// again with the next batch, its attempt unspent; see <c>Relay__GatherWindow</c>.</summary>
    public sealed record Gathered : RelayOutcome;

    /// <summary>Cannot be delivered as it is: dead-letter with the reason and a description a person can act on.</summary>
    public sealed record DeadLetter(DeadLetterReason Reason, string Description) : RelayOutcome;
}
