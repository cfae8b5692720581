using Polly.Timeout;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>How a Klaviyo answer or a transport failure is treated (spec section 6).</summary>
internal enum FailureKind
{
    /// <summary>2xx: not a failure.</summary>
    None,
    /// <summary>408, 429, 5xx, timeout, connection failure: try again (in the call, then as a scheduled retry).</summary>
    Transient,
    /// <summary>401, 403: the key is wrong or lacks a scope; dead-letter <c>KlaviyoUnauthorized</c>.</summary>
    Unauthorized,
    /// <summary>Any other answer (400, 404, 405, 409, 410, 413, 415, 422, 3xx, …): dead-letter <c>KlaviyoRejected</c>.</summary>
    Rejected,
}

/// <summary>The one place that decides transient versus permanent (spec section 6 table).</summary>
internal static class FailureClassifier
{
    public static FailureKind Classify(int statusCode) => statusCode switch
    {
        >= 200 and < 300 => FailureKind.None,
        401 or 403 => FailureKind.Unauthorized,
        408 or 429 => FailureKind.Transient,
        >= 500 and < 600 => FailureKind.Transient,
        _ => FailureKind.Rejected,
    };

    /// <summary>True for failures where no answer came: connection failures, resets and per-attempt timeouts.
    /// Cancellation by the caller (host shutdown) is not a failure and is never classified here.</summary>
    public static bool IsTransient(Exception exception) =>
        exception is HttpRequestException or TimeoutRejectedException or IOException;
}
