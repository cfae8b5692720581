using System.Globalization;

namespace Klaviyo.Functions.Events;

/// <summary>The relay's own timestamps (an event's <c>receivedAt</c>, a dead letter's <c>deadLetteredAt</c>): UTC, ISO 8601, milliseconds.</summary>
internal static class EventTimestamp
{
    public static string Format(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
}
