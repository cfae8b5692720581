namespace Klaviyo.Functions.Events;

/// <summary>The RudderStack / Segment event types the relay knows (spec section 4).</summary>
public enum EventType
{
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

public static class EventTypes
{
    /// <summary>Parses a type name case-insensitively; false for unknown names.</summary>
    public static bool TryParse(string? value, out EventType type)
    {
        type = default;
        if (string.IsNullOrEmpty(value) || !char.IsLetter(value[0]))
        {
            return false;
        }
        return Enum.TryParse(value, ignoreCase: true, out type) && Enum.IsDefined(type);
    }

    /// <summary>The lower-case wire name (`identify`, `track`, …).</summary>
    public static string WireName(this EventType type) => type switch
    {
        EventType.Identify => "identify",
        EventType.Track => "track",
        EventType.Page => "page",
        EventType.Screen => "screen",
        EventType.Group => "group",
        EventType.Alias => "alias",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
