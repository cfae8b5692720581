using System.Globalization;
using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// Order Completed under <c>Klaviyo__OrderCompleted=placedOrder</c> (spec 5, track): 1 + N events for the same profile
/// and time, the metrics Klaviyo's revenue reporting reads. Placed Order (<c>unique_id</c> = the order id, else the
/// messageId) and one Ordered Product per item (<c>unique_id</c> = <c>&lt;order&gt;:&lt;product key&gt;</c>, a repeated key
/// taking <c>#2</c>, <c>#3</c>…), so a retry or a replay sends the same ids and Klaviyo counts the order once.
/// </summary>
internal static class OrderMapping
{
    private static readonly JsonEncodedText s_properties = JsonEncodedText.Encode("properties");
    private static readonly JsonEncodedText s_time = JsonEncodedText.Encode("time");
    private static readonly JsonEncodedText s_value = JsonEncodedText.Encode("value");
    private static readonly JsonEncodedText s_valueCurrency = JsonEncodedText.Encode("value_currency");
    private static readonly JsonEncodedText s_uniqueId = JsonEncodedText.Encode("unique_id");
    private static readonly JsonEncodedText s_orderId = JsonEncodedText.Encode("OrderId");
    private static readonly JsonEncodedText s_items = JsonEncodedText.Encode("Items");
    private static readonly JsonEncodedText s_itemPrice = JsonEncodedText.Encode(OrderEvents.ItemPrice);
    private static readonly JsonEncodedText s_rowTotal = JsonEncodedText.Encode(OrderEvents.RowTotal);

    // Keys Placed Order writes itself: a property sent under one of these names is not written a second time.
    private static readonly Utf8KeyTable s_generated = new(["Items", .. OrderEvents.ItemLists.Select(l => l.Name)]);

    /// <summary>True when <paramref name="trimmedName"/> is Order Completed (any case) and the setting asks for orders.</summary>
    public static bool Applies(EventView view, KlaviyoOptions options, string trimmedName) =>
        options.PlacesOrders && string.Equals(trimmedName, view.Mappings.Tables.OrderCompletedName, StringComparison.OrdinalIgnoreCase);

    public static TransformResult Map(EventView view, KlaviyoOptions options, DateTimeOffset now, int maxItems)
    {
        var tables = view.Mappings.Tables;
        var properties = view.Properties;
        if (EventTime.Resolve(view, now, out var time) is { } timeError)
        {
            return timeError;
        }
        if (EventBody.ReadValue(view, properties, out var value, out var valueText) is { } valueError)
        {
            return valueError;
        }
        if (EventBody.ReadCurrency(view, properties, out var currency) is { } currencyError)
        {
            return currencyError;
        }
        if (ReadOrderId(view, out var orderId, out var orderKey) is { } orderIdError)
        {
            return orderIdError;
        }
        if (ReadItems(view, maxItems, out var items, out var itemsField) is { } itemsError)
        {
            return itemsError;
        }
        if (ProductKeys(tables, items, itemsField, orderKey, out var productIds) is { } keyError)
        {
            return keyError;
        }

        // One buffer holds [profile, Placed Order, Ordered Product…], sliced apart below.
        var writer = BodyBuffers.Body();
        writer.WriteStartArray();
        if (ProfileBuilder.Write(writer, view, options, forEvent: true, out var identityEnd) is { } profileError)
        {
            return profileError;
        }
        writer.Flush();
        var profileEnd = checked((int)writer.BytesCommitted);
        var bounds = new List<(int Start, int DedupeEnd, int End)>(1 + productIds.Count);

        // Placed Order.
        var start = profileEnd + 1;
        var dedupeEnd = WriteHead(writer, options.PlacedOrderMetric.Trim(), orderKey, time);
        if (value.ValueKind == JsonValueKind.Number)
        {
            writer.WritePropertyName(s_value);
            value.WriteTo(writer);
        }
        else if (valueText is { } parsed)
        {
            writer.WriteNumber(s_value, parsed);
        }
        WriteCurrency(writer, currency);
        writer.WritePropertyName(s_properties);
        var placedError = options.FlattenProperties
            ? PropertyFlattener.WriteFlattened(writer, w => WritePlacedOrderProperties(w, view, properties, items, itemsField))
            : WritePlacedOrderProperties(writer, view, properties, items, itemsField);
        if (placedError is not null)
        {
            return placedError;
        }
        writer.WriteEndObject();
        writer.Flush();
        bounds.Add((start, dedupeEnd, checked((int)writer.BytesCommitted)));

        // One Ordered Product per item.
        var productIndex = 0;
        foreach (var item in Elements(items))
        {
            start = bounds[^1].End + 1;
            dedupeEnd = WriteHead(writer, options.OrderedProductMetric.Trim(), productIds[productIndex++], time);
            if (RowTotal(item, out var rowTotal) is { } total)
            {
                writer.WritePropertyName(s_value);
                WriteRowTotal(writer, total, rowTotal);
            }
            WriteCurrency(writer, currency);
            writer.WritePropertyName(s_properties);
            if (options.FlattenProperties)
            {
                PropertyFlattener.WriteFlattened(writer, w =>
                {
                    WriteOrderedProduct(w, orderId, item);
                    return null;
                });
            }
            else
            {
                WriteOrderedProduct(writer, orderId, item);
            }
            writer.WriteEndObject();
            writer.Flush();
            bounds.Add((start, dedupeEnd, checked((int)writer.BytesCommitted)));
        }
        writer.WriteEndArray();

        if (view.ValidateOnly)
        {
            // Every check has run on the way (the ingest's validate-only path); nothing is kept.
            return TransformResult.Planned.Checked;
        }
        var all = BodyBuffers.ToArray(writer);
        var profile = new ProfilePart(all.AsMemory(1, profileEnd - 1), identityEnd - 1);
        var events = bounds.ConvertAll(b => new EventPart(profile, all.AsMemory(b.Start, b.End - b.Start), b.DedupeEnd - b.Start));
        return new TransformResult.Planned(new EventParts(events, view.Warnings));
    }

    // {"metric":{"data":{"type":"metric","attributes":{"name":…}}},"unique_id":…  — the dedupe bytes end here — ,"time":…
    private static int WriteHead(Utf8JsonWriter writer, string metric, string? uniqueId, DateTime? time)
    {
        writer.WriteStartObject();
        EventBody.WriteMetric(writer, metric);
        if (uniqueId is not null)
        {
            writer.WriteString(s_uniqueId, uniqueId);
        }
        else if (time is { } keyTime)
        {
            writer.WriteString(s_time, keyTime);
        }
        writer.Flush();
        var dedupeEnd = checked((int)writer.BytesCommitted);
        if (uniqueId is not null && time is { } t)
        {
            writer.WriteString(s_time, t);
        }
        return dedupeEnd;
    }

    private static void WriteCurrency(Utf8JsonWriter writer, JsonElement currency)
    {
        if (currency.IsPresent())
        {
            writer.WritePropertyName(s_valueCurrency);
            currency.WriteTo(writer);
        }
    }

    // order_id ?? orderId: a string or a number (kept as sent in OrderId, as text in the unique_id); else the messageId.
    private static TransformResult.Invalid? ReadOrderId(EventView view, out JsonElement orderId, out string? key)
    {
        key = null;
        orderId = default;
        foreach (var candidate in view.Mappings.Tables.OrderId.In(view))
        {
            if (JsonRead.IsEmptyString(candidate.Value))
            {
                continue;
            }
            if (candidate.Value.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
            {
                return new TransformResult.Invalid(candidate.Field, "must be a string or a number");
            }
            orderId = candidate.Value;
            key = candidate.Value.ValueKind == JsonValueKind.String ? candidate.Value.GetString() : candidate.Value.GetRawText();
            return null;
        }
        if (view.StampedByIngest)
        {
            // The ingest writes the messageId this order will be keyed by.
            key = "";
            return null;
        }
        var messageId = view.Mappings.Tables.UniqueId.First(view, out var field);
        if (JsonRead.CheckText(messageId, field) is { } error)
        {
            return error;
        }
        key = messageId.ValueKind switch
        {
            JsonValueKind.String when !JsonRead.IsEmptyString(messageId) => messageId.GetString(),
            JsonValueKind.Number => messageId.GetRawText(),
            _ => null,
        };
        return key is null
            ? new TransformResult.Invalid(field, "is required for an order without properties.order_id (it keys the order's unique_id)")
            : null;
    }

    // products ?? items: an array of at most maxItems objects (nulls are left out, as everywhere).
    private static TransformResult.Invalid? ReadItems(EventView view, int maxItems, out JsonElement items, out string field)
    {
        items = view.Mappings.Tables.OrderItems.First(view, out field);
        if (!items.IsPresent())
        {
            return null;
        }
        if (items.ValueKind != JsonValueKind.Array)
        {
            return new TransformResult.Invalid(field, "must be an array");
        }
        var count = 0;
        var index = 0;
        foreach (var item in items.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.Object)
            {
                count++;
            }
            else if (item.ValueKind != JsonValueKind.Null)
            {
                return new TransformResult.Invalid(string.Create(CultureInfo.InvariantCulture, $"{field}[{index}]"), "must be an object");
            }
            index++;
        }
        return count > maxItems
            ? new TransformResult.Invalid(field, string.Create(CultureInfo.InvariantCulture,
                $"an order may have at most {maxItems} items (Relay__MaxItemsPerOrder), this one has {count}"))
            : null;
    }

    // <order key>:<product_id ?? productId ?? sku ?? id ?? index>, a repeated key taking #2, #3… in array order.
    private static TransformResult.Invalid? ProductKeys(MappingTables tables, JsonElement items, string itemsField, string? orderKey, out List<string?> ids)
    {
        ids = [];
        if (items.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        var used = new HashSet<string>(StringComparer.Ordinal);
        var index = -1;
        foreach (var item in items.EnumerateArray())
        {
            index++;
            if (item.ValueKind != JsonValueKind.Object)
            {
                continue;
            }
            string? key = null;
            foreach (var name in tables.OrderedProductKey)
            {
                var candidate = JsonRead.Get(item, System.Text.Encoding.UTF8.GetBytes(name));
                if (!candidate.IsPresent() || JsonRead.IsEmptyString(candidate))
                {
                    continue;
                }
                if (candidate.ValueKind is not (JsonValueKind.String or JsonValueKind.Number))
                {
                    return new TransformResult.Invalid(string.Create(CultureInfo.InvariantCulture, $"{itemsField}[{index}].{name}"), "must be a string or a number");
                }
                key = candidate.ValueKind == JsonValueKind.String ? candidate.GetString() : candidate.GetRawText();
                break;
            }
            var id = string.Concat(orderKey, ":", key ?? index.ToString(CultureInfo.InvariantCulture));
            var unique = id;
            for (var n = 2; !used.Add(unique); n++)
            {
                unique = string.Concat(id, "#", n.ToString(CultureInfo.InvariantCulture));
            }
            ids.Add(orderKey is null ? null : unique);
        }
        return null;
    }

    private static IEnumerable<JsonElement> Elements(JsonElement items) =>
        items.ValueKind == JsonValueKind.Array ? items.EnumerateArray().Where(i => i.ValueKind == JsonValueKind.Object) : [];

    private static TransformResult.Invalid? WritePlacedOrderProperties(Utf8JsonWriter writer, EventView view, JsonElement properties, JsonElement items, string itemsField)
    {
        writer.WriteStartObject();
        var count = 0;
        var table = OrderEvents.PlacedOrderProperties;
        if (properties.ValueKind == JsonValueKind.Object)
        {
            var consumed = view.Mappings.ConsumedEventProperties;
            foreach (var property in properties.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.Null || consumed.Contains(property)
                    || property.NameEquals("products"u8) || property.NameEquals("items"u8)
                    || (items.IsPresent() && s_generated.Contains(property)))
                {
                    continue;
                }
                var index = table.SourceIndex(property);
                if (index >= 0 && !table.IsOutranked(properties, index))
                {
                    table.WriteMapped(writer, index, property.Value);
                }
                else if (!table.IsShadowed(properties, property))
                {
                    property.WriteTo(writer);
                }
                else
                {
                    continue;
                }
                count++;
            }
        }
        if (items.IsPresent())
        {
            writer.WritePropertyName(s_items);
            writer.WriteStartArray();
            foreach (var item in Elements(items))
            {
                WritePlacedOrderItem(writer, item);
            }
            writer.WriteEndArray();
            count++;
            foreach (var (name, keys) in OrderEvents.ItemLists)
            {
                writer.WritePropertyName(name);
                WriteDistinct(writer, items, keys);
                count++;
            }
        }
        writer.WriteEndObject();
        return count > EventBody.MaxProperties
            ? new TransformResult.Invalid("properties", $"must have at most {EventBody.MaxProperties} properties")
            : null;
    }

    // An item of Placed Order's Items: the item table of Added to Cart and Started Checkout, plus ItemPrice and RowTotal.
    private static void WritePlacedOrderItem(Utf8JsonWriter writer, JsonElement item)
    {
        var table = EcommerceEvent.ItemTable;
        var price = JsonRead.Get(item, "price"u8);
        writer.WriteStartObject();
        foreach (var property in item.EnumerateObject())
        {
            if ((price.IsPresent() && property.NameEquals(OrderEvents.ItemPrice))
                || (property.NameEquals(OrderEvents.RowTotal) && RowTotal(item, out _) == RowTotalSource.Computed))
            {
                continue;
            }
            var source = table.SourceIndex(property);
            if (source >= 0 && !table.IsOutranked(item, source))
            {
                table.WriteMapped(writer, source, property.Value);
            }
            else if (!table.IsShadowed(item, property))
            {
                property.WriteTo(writer);
            }
        }
        if (price.IsPresent())
        {
            writer.WritePropertyName(s_itemPrice);
            price.WriteTo(writer);
        }
        // A row total as sent is written by the item table (total, row_total → RowTotal).
        if (RowTotal(item, out var rowTotal) == RowTotalSource.Computed)
        {
            writer.WritePropertyName(s_rowTotal);
            WriteRowTotal(writer, RowTotalSource.Computed, rowTotal);
        }
        writer.WriteEndObject();
    }

    private static void WriteOrderedProduct(Utf8JsonWriter writer, JsonElement orderId, JsonElement item)
    {
        var table = OrderEvents.OrderedProduct;
        writer.WriteStartObject();
        if (orderId.IsPresent())
        {
            writer.WritePropertyName(s_orderId);
            orderId.WriteTo(writer);
        }
        var computed = RowTotal(item, out _) == RowTotalSource.Computed;
        foreach (var property in item.EnumerateObject())
        {
            if ((orderId.IsPresent() && property.NameEquals("OrderId"u8)) || (computed && property.NameEquals(OrderEvents.RowTotal)))
            {
                continue;
            }
            var source = table.SourceIndex(property);
            if (source >= 0 && !table.IsOutranked(item, source))
            {
                table.WriteMapped(writer, source, property.Value);
            }
            else if (!table.IsShadowed(item, property))
            {
                property.WriteTo(writer);
            }
        }
        if (computed && RowTotal(item, out var rowTotal) is { } total)
        {
            writer.WritePropertyName(s_rowTotal);
            WriteRowTotal(writer, total, rowTotal);
        }
        writer.WriteEndObject();
    }

    /// <summary>Where an item's row total comes from: as sent (<c>total</c> ?? <c>row_total</c>), or computed.</summary>
    private enum RowTotalSource
    {
        Sent,
        Computed,
    }

    private static void WriteRowTotal(Utf8JsonWriter writer, RowTotalSource source, (JsonElement Sent, decimal Computed) value)
    {
        if (source == RowTotalSource.Sent)
        {
            value.Sent.WriteTo(writer);
        }
        else
        {
            writer.WriteNumberValue(value.Computed);
        }
    }

    // total ?? row_total as sent when it is a number; else price × quantity when both are numbers; else none.
    private static RowTotalSource? RowTotal(JsonElement item, out (JsonElement Sent, decimal Computed) value)
    {
        value = default;
        foreach (var key in OrderEvents.RowTotalKeys)
        {
            var sent = JsonRead.Get(item, System.Text.Encoding.UTF8.GetBytes(key));
            if (sent.IsPresent())
            {
                if (sent.ValueKind != JsonValueKind.Number)
                {
                    return null;
                }
                value = (sent, 0);
                return RowTotalSource.Sent;
            }
        }
        if (JsonRead.Get(item, "price"u8) is { ValueKind: JsonValueKind.Number } price && price.TryGetDecimal(out var p)
            && JsonRead.Get(item, "quantity"u8) is { ValueKind: JsonValueKind.Number } quantity && quantity.TryGetDecimal(out var q)
            && Math.Abs(p) < 1e12m && Math.Abs(q) < 1e12m)
        {
            value = (default, p * q);
            return RowTotalSource.Computed;
        }
        return null;
    }

    // The distinct values of the items' keys, in item order: strings and numbers, and the elements of arrays of them.
    private static void WriteDistinct(Utf8JsonWriter writer, JsonElement items, string[] keys)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        writer.WriteStartArray();
        foreach (var item in Elements(items))
        {
            foreach (var key in keys)
            {
                var value = JsonRead.Get(item, System.Text.Encoding.UTF8.GetBytes(key));
                if (!value.IsPresent())
                {
                    continue;
                }
                foreach (var element in value.ValueKind == JsonValueKind.Array ? value.EnumerateArray() : Enumerable.Repeat(value, 1))
                {
                    if (element.ValueKind is JsonValueKind.String or JsonValueKind.Number && seen.Add(element.GetRawText()))
                    {
                        element.WriteTo(writer);
                    }
                }
                break; // first present key wins (categories, then Segment's category)
            }
        }
        writer.WriteEndArray();
    }
}
