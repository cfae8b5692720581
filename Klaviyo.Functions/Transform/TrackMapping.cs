using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>track (spec 5): one event; the three e-commerce names are converted and their properties renamed.</summary>
internal static class TrackMapping
{
    /// <param name="maxItemsPerOrder"><c>Relay__MaxItemsPerOrder</c>, for an Order Completed under <c>placedOrder</c>.</param>
    public static TransformResult Map(EventView view, KlaviyoOptions options, DateTimeOffset now, int maxItemsPerOrder = Settings.RelayOptions.DefaultMaxItemsPerOrder)
    {
        var @event = view.Mappings.Tables.TrackName.First(view, out var field);
        if (@event.ValueKind == JsonValueKind.Undefined)
        {
            return new TransformResult.Invalid(field, "is required for track events");
        }
        if (@event.ValueKind != JsonValueKind.String)
        {
            return new TransformResult.Invalid(field, "must be a string");
        }
        if (options.PlacesOrders && @event.ValueKind == JsonValueKind.String && OrderMapping.Applies(view, options, @event.GetString()!.Trim()))
        {
            return OrderMapping.Map(view, options, now, maxItemsPerOrder);
        }
        if (EventBody.IsPlainName(@event))
        {
            var known = view.Mappings.FindEcommerce(EventBody.PlainText(@event));
            return EventBody.Build(view, options, now, known is null ? MetricName.Plain(@event) : known.MetricName, view.Properties, known);
        }
        var name = @event.GetString()!.Trim();
        if (name.Length == 0)
        {
            return new TransformResult.Invalid(field, "must not be empty");
        }
        if (EventBody.CheckMetricName(name, field) is { } error)
        {
            return error;
        }
        var ecommerce = view.Mappings.FindEcommerce(name);
        return EventBody.Build(view, options, now, ecommerce?.MetricName ?? name, view.Properties, ecommerce);
    }
}

/// <summary>screen (spec 5): as track, named <c>name</c> ?? <c>properties.name</c> ?? <c>event</c>, no e-commerce conversion.</summary>
internal static class ScreenMapping
{
    public static TransformResult Map(EventView view, KlaviyoOptions options, DateTimeOffset now)
    {
        var rule = view.Mappings.Tables.ScreenName;
        var plain = rule.First(view);
        if (EventBody.IsPlainName(plain))
        {
            return EventBody.Build(view, options, now, MetricName.Plain(plain), view.Properties, ecommerce: null);
        }
        // The first source that holds a non-blank string; a present value of another JSON type is an error.
        foreach (var candidate in rule.In(view))
        {
            if (candidate.Value.ValueKind != JsonValueKind.String)
            {
                return new TransformResult.Invalid(candidate.Field, "must be a string");
            }
            var trimmed = candidate.Value.GetString()!.Trim();
            if (trimmed.Length == 0)
            {
                continue;
            }
            return EventBody.CheckMetricName(trimmed, candidate.Field)
                ?? EventBody.Build(view, options, now, trimmed, view.Properties, ecommerce: null);
        }
        return new TransformResult.Invalid(rule.Sources[0].UpperField, $"is required for screen events ({rule.Describe()})");
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
        if (Part(view, view.Mappings.Tables.PageName, out var name) is { } e1)
        {
            return e1;
        }
        if (Part(view, view.Mappings.Tables.PageCategory, out var category) is { } e2)
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

    // A part of the page name: the first source that is not an empty string decides (a blank one means no part).
    private static TransformResult.Invalid? Part(EventView view, SourceList rule, out string? value)
    {
        value = null;
        foreach (var candidate in rule.In(view))
        {
            if (JsonRead.IsEmptyString(candidate.Value))
            {
                continue;
            }
            if (candidate.Value.ValueKind != JsonValueKind.String)
            {
                return new TransformResult.Invalid(candidate.Field, "must be a string");
            }
            var trimmed = candidate.Value.GetString()!.Trim();
            value = trimmed.Length == 0 ? null : trimmed;
            return null;
        }
        return null;
    }
}
