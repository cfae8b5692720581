using System.Globalization;
using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// The event parts shared by track, screen and page (spec 5): the profile it is for, and its attributes (metric,
/// unique_id, time, value / value_currency, properties), from which <c>Calls.KlaviyoCalls</c> writes the single
/// <c>POST /api/events</c> body (<c>EventCreateQueryV2</c>) and the bulk entries alike.
/// </summary>
internal static class EventBody
{
    /// <summary>Klaviyo's limit on a metric name is "under 128 characters".</summary>
    public const int MaxMetricNameLength = 127;

    /// <summary>Klaviyo accepts at most 400 event properties.</summary>
    public const int MaxProperties = 400;

    private static readonly JsonEncodedText s_data = JsonEncodedText.Encode("data");
    private static readonly JsonEncodedText s_type = JsonEncodedText.Encode("type");
    private static readonly JsonEncodedText s_metric = JsonEncodedText.Encode("metric");
    private static readonly JsonEncodedText s_attributes = JsonEncodedText.Encode("attributes");
    private static readonly JsonEncodedText s_name = JsonEncodedText.Encode("name");
    private static readonly JsonEncodedText s_properties = JsonEncodedText.Encode("properties");
    private static readonly JsonEncodedText s_time = JsonEncodedText.Encode("time");
    private static readonly JsonEncodedText s_value = JsonEncodedText.Encode("value");
    private static readonly JsonEncodedText s_valueCurrency = JsonEncodedText.Encode("value_currency");
    private static readonly JsonEncodedText s_uniqueId = JsonEncodedText.Encode("unique_id");
    private static readonly JsonEncodedText s_items = JsonEncodedText.Encode("Items");

    /// <summary>
    /// True when the string value needs no trimming or unescaping and is within the metric name limit: plain ASCII,
    /// no escapes, no whitespace at either end. Such a name is written from the event's bytes, without a string.
    /// </summary>
    public static bool IsPlainName(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        var raw = PlainText(value);
        return raw.Length is > 0 and <= MaxMetricNameLength && raw[0] > (byte)' ' && raw[^1] > (byte)' '
            && System.Text.Ascii.IsValid(raw) && raw.IndexOf((byte)'\\') < 0;
    }

    /// <summary>The bytes between the quotes of a string value as the event sent them (escapes not undone).</summary>
    public static ReadOnlySpan<byte> PlainText(JsonElement stringValue) =>
        System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(stringValue)[1..^1];

    /// <summary>Checks a metric name against Klaviyo's length limit.</summary>
    /// <summary>An event's <c>"metric":{"data":{"type":"metric","attributes":{"name":…}}}</c>, its first member.</summary>
    public static void WriteMetric(Utf8JsonWriter writer, MetricName name)
    {
        writer.WritePropertyName(s_metric);
        writer.WriteStartObject();
        writer.WritePropertyName(s_data);
        writer.WriteStartObject();
        writer.WriteString(s_type, s_metric);
        writer.WritePropertyName(s_attributes);
        writer.WriteStartObject();
        name.Write(writer, s_name);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    public static TransformResult.Invalid? CheckMetricName(string name, string field) =>
        name.Length > MaxMetricNameLength
            ? new TransformResult.Invalid(field, "metric name must be shorter than 128 characters")
            : null;

    /// <summary>
    /// Builds the event's parts. <paramref name="properties"/> is the object whose keys become event properties
    /// (<c>default</c> for <c>{}</c>); <paramref name="ecommerce"/> renames them when set.
    /// </summary>
    public static TransformResult Build(EventView view, KlaviyoOptions options, DateTimeOffset now, MetricName metricName,
        JsonElement properties, EcommerceEvent? ecommerce)
    {
        if (EventTime.Resolve(view, now, out var time) is { } timeError)
        {
            return timeError;
        }
        if (ReadValue(view, properties, out var value, out var valueText) is { } valueError)
        {
            return valueError;
        }
        if (ReadCurrency(view, properties, out var currency) is { } currencyError)
        {
            return currencyError;
        }
        if (ReadUniqueId(view, ecommerce, out var uniqueId) is { } uniqueIdError)
        {
            return uniqueIdError;
        }

        if (view.ValidateOnly)
        {
            // The same checks as below, nothing written (the ingest's validate-only path).
            return WriteProperties(null, view, properties, ecommerce) ?? ProfileBuilder.Write(null, view, options, forEvent: true, out _) ?? (TransformResult)TransformResult.Planned.Checked;
        }

        // One buffer holds both parts, [profile, attributes], sliced apart below: one array per event.
        var writer = BodyBuffers.Body();
        writer.WriteStartArray();
        if (ProfileBuilder.Write(writer, view, options, forEvent: true, out var identityEnd) is { } profileError)
        {
            return profileError;
        }
        writer.Flush();
        var profileEnd = checked((int)writer.BytesCommitted);

        // Metric, unique_id, time first: the bytes up to the key's end are what Klaviyo deduplicates on (EventPart).
        writer.WriteStartObject();
        WriteMetric(writer, metricName);
        if (uniqueId.IsPresent())
        {
            writer.WritePropertyName(s_uniqueId);
            JsonRead.WriteAsString(writer, uniqueId);
        }
        else if (time is { } keyTime)
        {
            writer.WriteString(s_time, keyTime);
        }
        writer.Flush();
        var dedupeEnd = checked((int)writer.BytesCommitted);
        if (uniqueId.IsPresent() && time is { } t)
        {
            writer.WriteString(s_time, t);
        }
        if (value.ValueKind == JsonValueKind.Number)
        {
            writer.WritePropertyName(s_value);
            value.WriteTo(writer);
        }
        else if (valueText is { } parsed)
        {
            writer.WriteNumber(s_value, parsed);
        }
        if (currency.IsPresent())
        {
            writer.WritePropertyName(s_valueCurrency);
            currency.WriteTo(writer);
        }
        writer.WritePropertyName(s_properties);
        var error = options.FlattenProperties
            ? WriteFlattenedProperties(writer, view, properties, ecommerce)
            : WriteProperties(writer, view, properties, ecommerce);
        if (error is not null)
        {
            return error;
        }
        writer.WriteEndObject();
        writer.WriteEndArray();

        var both = BodyBuffers.ToArray(writer);
        var profile = new ProfilePart(both.AsMemory(1, profileEnd - 1), identityEnd - 1);
        // The attributes start after the comma that follows the profile and end before the closing bracket.
        var attributes = both.AsMemory(profileEnd + 1, both.Length - profileEnd - 2);
        return new TransformResult.Planned(new EventParts(new EventPart(profile, attributes, dedupeEnd - profileEnd - 1), view.Warnings));
    }

    // value: revenue ?? value ?? total; a JSON number or an invariant-culture numeric string (spec 5). Read from the
    // properties the event sends (page without AdditionalPageInfo sends none).
    internal static TransformResult.Invalid? ReadValue(EventView view, JsonElement properties, out JsonElement number, out double? parsed)
    {
        number = default;
        parsed = null;
        var value = FirstInProperties(view, view.Mappings.Tables.Value, properties, out var field);
        switch (value.ValueKind)
        {
            case JsonValueKind.Undefined:
                return null;
            case JsonValueKind.Number when value.TryGetDouble(out var d) && double.IsFinite(d):
                number = value;
                return null;
            case JsonValueKind.String when double.TryParse(value.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d):
                parsed = d;
                return null;
            default:
                return new TransformResult.Invalid(field, "must be a number");
        }
    }

    internal static TransformResult.Invalid? ReadCurrency(EventView view, JsonElement properties, out JsonElement currency)
    {
        currency = FirstInProperties(view, view.Mappings.Tables.Currency, properties, out var field);
        if (currency.IsPresent() && currency.ValueKind != JsonValueKind.String)
        {
            return new TransformResult.Invalid(field, "must be a string");
        }
        if (JsonRead.IsEmptyString(currency))
        {
            currency = default;
        }
        return null;
    }

    // The first present source of a properties-only rule; nothing when the event sends no properties.
    private static JsonElement FirstInProperties(EventView view, SourceList rule, JsonElement properties, out string field)
    {
        field = "";
        return properties.ValueKind == JsonValueKind.Object ? rule.First(view, out field) : default;
    }

    // unique_id: order_id for Started Checkout when present, otherwise messageId (spec 5).
    private static TransformResult.Invalid? ReadUniqueId(EventView view, EcommerceEvent? ecommerce, out JsonElement uniqueId)
    {
        string field;
        if (ecommerce == EcommerceEvent.StartedCheckout)
        {
            uniqueId = view.Mappings.Tables.CheckoutUniqueId.First(view, out field);
            if (uniqueId.IsPresent() && !JsonRead.IsEmptyString(uniqueId))
            {
                return JsonRead.CheckText(uniqueId, field);
            }
        }
        if (view.StampedByIngest)
        {
            // The ingest writes its own messageId (checked there); the event's is not the one that will be sent.
            uniqueId = default;
            return null;
        }
        uniqueId = view.Mappings.Tables.UniqueId.First(view, out field);
        if (JsonRead.IsEmptyString(uniqueId))
        {
            uniqueId = default;
        }
        return JsonRead.CheckText(uniqueId, field);
    }

    // Its own method so the closure is only allocated when flattening is on.
    private static TransformResult.Invalid? WriteFlattenedProperties(Utf8JsonWriter writer, EventView view, JsonElement properties, EcommerceEvent? ecommerce) =>
        PropertyFlattener.WriteFlattened(writer, w => WriteProperties(w, view, properties, ecommerce));

    /// <summary>The event's properties, renamed for e-commerce; a null <paramref name="writer"/> runs the checks only.</summary>
    private static TransformResult.Invalid? WriteProperties(Utf8JsonWriter? writer, EventView view, JsonElement properties, EcommerceEvent? ecommerce)
    {
        writer?.WriteStartObject();
        var count = 0;
        if (properties.ValueKind == JsonValueKind.Object)
        {
            var consumed = view.Mappings.ConsumedEventProperties;
            var hasItems = ecommerce is { MapsItems: true } && JsonRead.Get(properties, "items"u8).IsPresent();
            foreach (var property in properties.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.Null || consumed.Contains(property))
                {
                    continue;
                }
                count++;
                if (ecommerce is null)
                {
                    if (writer is null)
                    {
                        continue;
                    }
                    property.WriteTo(writer);
                    continue;
                }
                if (ecommerce.MapsItems && (property.NameEquals("items"u8) || (!hasItems && property.NameEquals("products"u8))))
                {
                    writer?.WritePropertyName(s_items);
                    if (WriteItems(writer, property) is { } error)
                    {
                        return error;
                    }
                    continue;
                }
                var index = ecommerce.Properties.SourceIndex(property);
                if (index >= 0 && !ecommerce.Properties.IsOutranked(properties, index))
                {
                    if (writer is not null)
                    {
                        ecommerce.Properties.WriteMapped(writer, index, property.Value);
                    }
                }
                else if (!ecommerce.Properties.IsShadowed(properties, property)
                    && !(ecommerce.MapsItems && property.NameEquals("Items"u8) && (hasItems || JsonRead.Get(properties, "products"u8).IsPresent())))
                {
                    if (writer is not null)
                    {
                        property.WriteTo(writer);
                    }
                }
                else
                {
                    count--;
                }
            }
        }
        writer?.WriteEndObject();
        return count > MaxProperties
            ? new TransformResult.Invalid("properties", $"must have at most {MaxProperties} properties")
            : null;
    }

    private static TransformResult.Invalid? WriteItems(Utf8JsonWriter? writer, JsonProperty items)
    {
        if (items.Value.ValueKind != JsonValueKind.Array)
        {
            return new TransformResult.Invalid("properties." + items.Name, "must be an array");
        }
        writer?.WriteStartArray();
        var index = 0;
        foreach (var item in items.Value.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.Null)
            {
                index++;
                continue;
            }
            if (item.ValueKind != JsonValueKind.Object)
            {
                return new TransformResult.Invalid(string.Create(CultureInfo.InvariantCulture, $"properties.{items.Name}[{index}]"), "must be an object");
            }
            index++;
            if (writer is null)
            {
                continue;
            }
            writer.WriteStartObject();
            foreach (var property in item.EnumerateObject())
            {
                var source = EcommerceEvent.ItemTable.SourceIndex(property);
                // Several sources feed one target (total and row_total, product_id, productId and id): the first present
                // wins and the others are kept as sent.
                if (source >= 0 && !EcommerceEvent.ItemTable.IsOutranked(item, source))
                {
                    EcommerceEvent.ItemTable.WriteMapped(writer, source, property.Value);
                }
                else if (!EcommerceEvent.ItemTable.IsShadowed(item, property))
                {
                    property.WriteTo(writer);
                }
            }
            writer.WriteEndObject();
        }
        writer?.WriteEndArray();
        return null;
    }
}

/// <summary>A metric name: a string, or a string value of the event that <see cref="EventBody.IsPlainName"/> accepted.</summary>
internal readonly struct MetricName
{
    private readonly string? _text;
    private readonly JsonElement _plain;

    private MetricName(string? text, JsonElement plain)
    {
        _text = text;
        _plain = plain;
    }

    public static implicit operator MetricName(string text) => new(text, default);

    public static MetricName Plain(JsonElement value) => new(null, value);

    public void Write(Utf8JsonWriter writer, JsonEncodedText property)
    {
        if (_text is not null)
        {
            writer.WriteString(property, _text);
        }
        else
        {
            writer.WriteString(property, EventBody.PlainText(_plain));
        }
    }
}
