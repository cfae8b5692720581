using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Bulk;

/// <summary>
/// The reading every bulk answer shares (spec 8.2, 8.3): 2xx accepts every message of the call; held back by the relay's
/// limiter, or 429/408/5xx/timeout, retries them all (held back without spending an attempt); 401/403 makes them all
/// unauthorized; a 400 whose errors point at items dead-letters those items' messages and resends the rest, and a
/// refusal that points at nothing sends each message on its own. Only where a pointer leads differs per endpoint.
/// </summary>
internal static class BulkAnswer
{
    /// <param name="messages">The call's messages.</param>
    /// <param name="request">The call, for descriptions.</param>
    /// <param name="pointedAt">The messages an error's <c>source.pointer</c> names, if it names any of this call's items.</param>
    public static IReadOnlyDictionary<int, BulkVerdict> Interpret(IEnumerable<int> messages, KlaviyoRequest request, KlaviyoResponse response, Func<string?, IEnumerable<int>?> pointedAt)
    {
        var all = messages.Distinct().ToList();
        switch (response)
        {
            case KlaviyoResponse.Success:
                return Each(all, new BulkVerdict.Delivered());
            case KlaviyoResponse.HeldBack held:
                return Each(all, new BulkVerdict.RetryLater(held.RetryAfter, held.Description, SpendsAttempt: false));
            case KlaviyoResponse.Transient transient:
                return Each(all, new BulkVerdict.RetryLater(transient.RetryAfter, transient.Description));
            case KlaviyoResponse.Unauthorized unauthorized:
                return Each(all, new BulkVerdict.DeadLetter(BulkRefusal.KlaviyoUnauthorized,
                    Describe(request.Path, unauthorized.StatusCode, unauthorized.Errors) + " — " + KlaviyoApi.UnauthorizedHint(request.Endpoint)));
            case KlaviyoResponse.Rejected rejected:
                var refused = new Dictionary<int, List<KlaviyoError>>();
                foreach (var error in rejected.StatusCode == 400 ? rejected.Errors : [])
                {
                    foreach (var message in pointedAt(error.Pointer) ?? [])
                    {
                        if (!refused.TryGetValue(message, out var errors))
                        {
                            refused[message] = errors = [];
                        }
                        errors.Add(error);
                    }
                }
                if (refused.Count == 0)
                {
                    return Each(all, new BulkVerdict.SendSingly(Describe(request.Path, rejected.StatusCode, rejected.Errors)));
                }
                return all.ToDictionary(m => m, m => refused.TryGetValue(m, out var errors)
                    ? (BulkVerdict)new BulkVerdict.DeadLetter(BulkRefusal.KlaviyoRejected, Describe(request.Path, rejected.StatusCode, errors))
                    : new BulkVerdict.Resend());
            default:
                throw new InvalidOperationException($"Unknown Klaviyo response {response.GetType().Name}.");
        }
    }

    private static Dictionary<int, BulkVerdict> Each(List<int> messages, BulkVerdict verdict) => messages.ToDictionary(m => m, _ => verdict);

    private static string Describe(string path, int status, IReadOnlyList<KlaviyoError> errors) =>
        $"POST {path} answered {status}" + (errors.Count == 0 ? "" : ": " + KlaviyoResponse.Describe(errors));
}
