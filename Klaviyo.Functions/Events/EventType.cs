using System.Text;
using System.Text.Json;

namespace Klaviyo.Functions.Events;

/// <summary>
/// The RudderStack / Segment event types the relay knows (spec section 4). This enum is the one list: the wire names,
/// the parser, the route pattern and every message naming the types are derived from it.
/// </summary>
internal enum EventType
{
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
    /// <summary>A request to delete the person (spec 5.7): Segment's shape, <c>userId</c> and <c>traits</c> email / phone.</summary>
    Delete,
}

internal static class EventTypes
{
    /// <summary>Every type, in declaration order.</summary>
    public static readonly IReadOnlyList<EventType> All = Enum.GetValues<EventType>();

    private static readonly string[] s_wireNames = [.. All.Select(t => t.ToString().ToLowerInvariant())];
    private static readonly byte[][] s_utf8Names = [.. s_wireNames.Select(Encoding.UTF8.GetBytes)];

    /// <summary>The types for a message: <c>identify, track, page, screen, group, alias, delete</c>.</summary>
    public static readonly string NameList = string.Join(", ", s_wireNames);

    /// <summary>The lower-case wire name (<c>identify</c>, <c>track</c>, …).</summary>
    public static string WireName(this EventType type) => s_wireNames[(int)type];

    /// <summary>Parses a type name, case-insensitively; false for unknown names.</summary>
    public static bool TryParse(string? value, out EventType type)
    {
        for (var i = 0; i < s_wireNames.Length; i++)
        {
            if (string.Equals(value, s_wireNames[i], StringComparison.OrdinalIgnoreCase))
            {
                type = (EventType)i;
                return true;
            }
        }
        type = default;
        return false;
    }

    /// <summary>
    /// Parses a JSON string value as <see cref="TryParse(string?, out EventType)"/> does; the wire names as SDKs send
    /// them are compared as bytes, without a string.
    /// </summary>
    public static bool TryParse(JsonElement value, out EventType type)
    {
        if (value.ValueKind == JsonValueKind.String)
        {
            for (var i = 0; i < s_utf8Names.Length; i++)
            {
                if (value.ValueEquals(s_utf8Names[i]))
                {
                    type = (EventType)i;
                    return true;
                }
            }
            return TryParse(value.GetString(), out type);
        }
        type = default;
        return false;
    }
}
