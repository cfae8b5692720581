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

    public static IReadOnlyDictionary<int, BulkVerdict> Interpret(EventsBulkCall call, KlaviyoResponse response) =>
        BulkAnswer.Interpret(call.Pieces, call.Request, response, pointer =>
            !TryParsePointer(pointer, out var entry, out var @event) || entry >= call.Entries.Count || (@event is { } j && j >= call.Entries[entry].Count)
                ? null
                : (@event is { } only ? [call.Entries[entry][only]] : call.Entries[entry]).SelectMany(e => e));

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
}
