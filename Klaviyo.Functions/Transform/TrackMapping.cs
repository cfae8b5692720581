using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>track (spec 5): one event; the three e-commerce names are converted and their properties renamed.</summary>
internal static class TrackMapping
{
    public static TransformResult Map(EventView view, KlaviyoOptions options, DateTimeOffset now)
    {
        var @event = JsonRead.Get(view.Root, "event"u8);
        if (@event.ValueKind == JsonValueKind.Undefined)
        {
            return new TransformResult.Invalid("event", "is required for track events");
        }
        if (@event.ValueKind != JsonValueKind.String)
        {
            return new TransformResult.Invalid("event", "must be a string");
        }
        if (EventBody.IsPlainName(@event))
        {
            var known = EcommerceEvent.Find(EventBody.PlainText(@event));
            return EventBody.Build(view, options, now, known is null ? MetricName.Plain(@event) : known.MetricName, view.Properties, known);
        }
        var name = @event.GetString()!.Trim();
        if (name.Length == 0)
        {
            return new TransformResult.Invalid("event", "must not be empty");
        }
        if (EventBody.CheckMetricName(name, "event") is { } error)
        {
            return error;
        }
        var ecommerce = EcommerceEvent.Find(name);
        return EventBody.Build(view, options, now, ecommerce?.MetricName ?? name, view.Properties, ecommerce);
    }
}

/// <summary>screen (spec 5): as track, named <c>name</c> ?? <c>properties.name</c> ?? <c>event</c>, no e-commerce conversion.</summary>
internal static class ScreenMapping
{
    public static TransformResult Map(EventView view, KlaviyoOptions options, DateTimeOffset now)
    {
        var plain = JsonRead.Get(view.Root, "name"u8);
        if (EventBody.IsPlainName(plain))
        {
            return EventBody.Build(view, options, now, MetricName.Plain(plain), view.Properties, ecommerce: null);
        }
        var error = NameOf(plain, "name", out var name);
        if (error is null && name is null)
        {
            error = NameOf(JsonRead.Get(view.Properties, "name"u8), "properties.name", out name);
        }
        if (error is null && name is null)
        {
            error = NameOf(JsonRead.Get(view.Root, "event"u8), "event", out name);
        }
        if (error is not null)
        {
            return error;
        }
        if (name is null)
        {
            return new TransformResult.Invalid("name", "is required for screen events (name, properties.name or event)");
        }
        return EventBody.Build(view, options, now, name, view.Properties, ecommerce: null);
    }

    private static TransformResult.Invalid? NameOf(JsonElement value, string field, out string? name)
    {
        name = null;
        if (!value.IsPresent())
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            return new TransformResult.Invalid(field, "must be a string");
        }
        var trimmed = value.GetString()!.Trim();
        if (trimmed.Length == 0)
        {
            return null;
        }
        name = trimmed;
        return EventBody.CheckMetricName(trimmed, field);
    }
}

/// <summary>
/// page (spec 5): with <c>SendPageAsTrack</c> an event named as RudderStack's web integration names it
/// (<c>Viewed &lt;category&gt; &lt;name&gt; page</c>, <c>Viewed &lt;name&gt; page</c>, <c>Viewed a Page</c>);
/// properties only with <c>AdditionalPageInfo</c>, otherwise <c>{}</c>. Without <c>SendPageAsTrack</c> it is skipped.
/// </summary>
internal static class PageMapping
{
    public const string SkipReason = "page events are not sent: SendPageAsTrack is off";

    public static TransformResult Map(EventView view, KlaviyoOptions options, DateTimeOffset now)
    {
        if (Part(view, "name"u8, "name", out var name) is { } e1)
        {
            return e1;
        }
        if (Part(view, "category"u8, "category", out var category) is { } e2)
        {
            return e2;
        }
        var metric = name is null ? "Viewed a Page"
            : category is null ? string.Concat("Viewed ", name, " page")
            : string.Concat("Viewed ", category, " ", name, " page");
        if (EventBody.CheckMetricName(metric, "name") is { } tooLong)
        {
            return tooLong;
        }
        var properties = options.AdditionalPageInfo ? view.Properties : default;
        return EventBody.Build(view, options, now, metric, properties, ecommerce: null);
    }

    // A part of the page name: the top-level field, else the same key in properties.
    private static TransformResult.Invalid? Part(EventView view, ReadOnlySpan<byte> key, string keyName, out string? value)
    {
        value = null;
        var element = JsonRead.Get(view.Root, key);
        var field = keyName;
        if (!element.IsPresent() || JsonRead.IsEmptyString(element))
        {
            element = JsonRead.Get(view.Properties, key);
            field = "properties." + keyName;
        }
        if (!element.IsPresent())
        {
            return null;
        }
        if (element.ValueKind != JsonValueKind.String)
        {
            return new TransformResult.Invalid(field, "must be a string");
        }
        var trimmed = element.GetString()!.Trim();
        value = trimmed.Length == 0 ? null : trimmed;
        return null;
    }
}
