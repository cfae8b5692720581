namespace Klaviyo.Functions.Events;

/// <summary>The event types per-profile ordering holds (spec 10): those that change a profile or its consent. Track,
/// screen and page carry their own <c>time</c>, which Klaviyo orders the timeline by, so they are never held.</summary>
internal static class OrderedTypes
{
    public static bool IsOrdered(EventType type) => type is EventType.Identify or EventType.Group or EventType.Delete;
}
