using System.Globalization;
using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// The event's <c>time</c> (spec 5, track): <c>timestamp</c> ?? <c>originalTimestamp</c> ?? the ingest's <c>receivedAt</c>,
/// sent as ISO-8601 UTC. Klaviyo refuses times before 1990 or more than a year ahead, so those are permanent errors here.
/// </summary>
internal static class EventTime
{
    public static readonly DateTimeOffset Earliest = new(1990, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Resolves the time; <paramref name="utc"/> is null when the event carries none (Klaviyo then uses arrival).</summary>
    public static TransformResult.Invalid? Resolve(EventView view, DateTimeOffset now, out DateTime? utc)
    {
        utc = null;
        foreach (var candidate in view.Mappings.Tables.Time.In(view))
        {
            if (view.StampedByIngest && candidate.Source.Path == KlaviyoTransformer.ReceivedAtField)
            {
                // The ingest replaces it with its own stamp, which is valid.
                return null;
            }
            var value = candidate.Value;
            var field = candidate.Field;
            if (value.ValueKind != JsonValueKind.String || !TryParse(value, out var time))
            {
                return new TransformResult.Invalid(field, "must be an ISO-8601 date-time");
            }
            if (time < Earliest)
            {
                return new TransformResult.Invalid(field, "must not be before 1990-01-01");
            }
            if (time > now.AddYears(1))
            {
                return new TransformResult.Invalid(field, "must not be more than a year in the future");
            }
            utc = time.UtcDateTime;
            return null;
        }
        return null;
    }

    private static bool TryParse(JsonElement value, out DateTimeOffset time)
    {
        // The common case (ISO 8601 as SDKs send it) parses without allocating.
        if (value.TryGetDateTimeOffset(out time))
        {
            return true;
        }
        return DateTimeOffset.TryParse(value.GetString(), CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowWhiteSpaces, out time);
    }
}
