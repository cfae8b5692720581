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

    public static IReadOnlyDictionary<int, BulkVerdict> Interpret(CarriedCall call, KlaviyoResponse response) =>
        BulkAnswer.Interpret(call.Messages, call.Request, response, pointer =>
            TryParsePointer(pointer, out var item) && item < call.ItemMessages.Count ? call.ItemMessages[item] : null);

    /// <summary>Reads <c>/data/attributes/profiles/data/&lt;k&gt;[/…]</c>.</summary>
    public static bool TryParsePointer(string? pointer, out int item)
    {
        item = -1;
        return pointer is not null && pointer.StartsWith(ItemPrefix, StringComparison.Ordinal)
            && int.TryParse(pointer[ItemPrefix.Length..].Split('/')[0], NumberStyles.None, CultureInfo.InvariantCulture, out item);
    }
}
