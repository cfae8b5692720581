using System.Globalization;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Bulk;

/// <summary>
/// What an <c>event-bulk-create-jobs</c> answer means for each message of the call (spec 8.2): 202 delivers all; a
/// 400 whose errors point at entries (<c>/data/attributes/events-bulk-create/data/&lt;i&gt;/…</c>, down to one event
/// with <c>…/attributes/events/data/&lt;j&gt;</c>) dead-letters those messages and resends the rest; a refusal naming
/// no entry sends every message on its own; 429/408/5xx/timeout retry all later; 401/403 are all unauthorized.
/// </summary>
internal static class EventsBulkAnswer
{
    private const string EntryPrefix = "/data/attributes/events-bulk-create/data/";

    public static IReadOnlyDictionary<int, BulkVerdict> Interpret(EventsBulkCall call, KlaviyoResponse response)
    {
        var all = call.Pieces.ToList();
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

    private static Dictionary<int, BulkVerdict> Rejected(EventsBulkCall call, KlaviyoResponse.Rejected rejected, List<int> all)
    {
        var refused = new Dictionary<int, List<KlaviyoError>>();
        if (rejected.StatusCode == 400)
        {
            foreach (var error in rejected.Errors)
            {
                if (!TryParsePointer(error.Pointer, out var entry, out var @event) || entry >= call.Entries.Count
                    || (@event is { } j && j >= call.Entries[entry].Count))
                {
                    continue;
                }
                var events = @event is { } only ? [call.Entries[entry][only]] : call.Entries[entry];
                foreach (var message in events.SelectMany(e => e))
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
        var verdicts = new Dictionary<int, BulkVerdict>();
        foreach (var message in all)
        {
            verdicts[message] = refused.TryGetValue(message, out var errors)
                ? new BulkVerdict.DeadLetter(BulkRefusal.KlaviyoRejected, Describe(call, rejected.StatusCode, errors))
                : new BulkVerdict.Resend();
        }
        return verdicts;
    }

    /// <summary>Reads <c>/data/attributes/events-bulk-create/data/&lt;i&gt;[/attributes/events/data/&lt;j&gt;]…</c>.</summary>
    public static bool TryParsePointer(string? pointer, out int entry, out int? @event)
    {
        entry = -1;
        @event = null;
        if (pointer is null || !pointer.StartsWith(EntryPrefix, StringComparison.Ordinal))
        {
            return false;
        }
        var parts = pointer[EntryPrefix.Length..].Split('/');
        if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out entry))
        {
            return false;
        }
        if (parts.Length >= 5 && parts[1] == "attributes" && parts[2] == "events" && parts[3] == "data"
            && int.TryParse(parts[4], NumberStyles.None, CultureInfo.InvariantCulture, out var j))
        {
            @event = j;
        }
        return true;
    }

    private static Dictionary<int, BulkVerdict> Each(List<int> messages, BulkVerdict verdict) => messages.Distinct().ToDictionary(m => m, _ => verdict);

    private static string Describe(EventsBulkCall call, int status, IReadOnlyList<KlaviyoError> errors) =>
        $"POST {call.Request.Path} answered {status}" + (errors.Count == 0 ? "" : ": " + KlaviyoResponse.Describe(errors));
}
