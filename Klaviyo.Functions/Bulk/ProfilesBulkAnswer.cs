using System.Globalization;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Bulk;

/// <summary>
/// What a <c>profile-bulk-import-jobs</c> or <c>profile-subscription-bulk-create-jobs</c> answer means for each message
/// of the call (spec 8.3), read like the events' (<see cref="EventsBulkAnswer"/>): 2xx accepts all (an import job is
/// then still to be confirmed); a 400 whose errors point at profiles (<c>/data/attributes/profiles/data/&lt;k&gt;/…</c>)
/// dead-letters those profiles' messages and resends the rest; a refusal naming no profile sends each message on its
/// own; 429/408/5xx/timeout retry all later; 401/403 are all unauthorized.
/// </summary>
internal static class ProfilesBulkAnswer
{
    private const string ItemPrefix = "/data/attributes/profiles/data/";

    public static IReadOnlyDictionary<int, BulkVerdict> Interpret(CarriedCall call, KlaviyoResponse response)
    {
        var all = call.Messages.Distinct().ToList();
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
                    Describe(call, unauthorized.StatusCode, unauthorized.Errors) + " — check Klaviyo__PrivateApiKey and its scopes"));
            case KlaviyoResponse.Rejected rejected:
                return Rejected(call, rejected, all);
            default:
                throw new InvalidOperationException($"Unknown Klaviyo response {response.GetType().Name}.");
        }
    }

    private static Dictionary<int, BulkVerdict> Rejected(CarriedCall call, KlaviyoResponse.Rejected rejected, List<int> all)
    {
        var refused = new Dictionary<int, List<KlaviyoError>>();
        if (rejected.StatusCode == 400)
        {
            foreach (var error in rejected.Errors)
            {
                if (!TryParsePointer(error.Pointer, out var item) || item >= call.ItemMessages.Count)
                {
                    continue;
                }
                foreach (var message in call.ItemMessages[item])
                {
                    if (!refused.TryGetValue(message, out var errors))
                    {
                        refused[message] = errors = [];
                    }
                    errors.Add(error);
                }
            }
        }
        if (refused.Count == 0)
        {
            return Each(all, new BulkVerdict.SendSingly(Describe(call, rejected.StatusCode, rejected.Errors)));
        }
        return all.ToDictionary(m => m, m => refused.TryGetValue(m, out var errors)
            ? (BulkVerdict)new BulkVerdict.DeadLetter(BulkRefusal.KlaviyoRejected, Describe(call, rejected.StatusCode, errors))
            : new BulkVerdict.Resend());
    }

    /// <summary>Reads <c>/data/attributes/profiles/data/&lt;k&gt;[/…]</c>.</summary>
    public static bool TryParsePointer(string? pointer, out int item)
    {
        item = -1;
        return pointer is not null && pointer.StartsWith(ItemPrefix, StringComparison.Ordinal)
            && int.TryParse(pointer[ItemPrefix.Length..].Split('/')[0], NumberStyles.None, CultureInfo.InvariantCulture, out item);
    }

    private static Dictionary<int, BulkVerdict> Each(List<int> messages, BulkVerdict verdict) => messages.ToDictionary(m => m, _ => verdict);

    private static string Describe(CarriedCall call, int status, IReadOnlyList<KlaviyoError> errors) =>
        $"POST {call.Request.Path} answered {status}" + (errors.Count == 0 ? "" : ": " + KlaviyoResponse.Describe(errors));
}
