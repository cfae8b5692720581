using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// The three e-commerce events of spec 5 (track) with their property and item tables, as data (the incoming names that
/// become them are <see cref="MappingTables.EcommerceRenames"/>). Source keys not in a
/// table are kept under their own names (RudderStack's legacy code drops them; spec 5 calls that a bug).
/// </summary>
internal sealed class EcommerceEvent
{
    private EcommerceEvent(string metricName, bool mapsItems, params Rename[] properties)
    {
        MetricName = metricName;
        MapsItems = mapsItems;
        Properties = new RenameTable(properties);
    }

    /// <summary>Klaviyo's metric name for the event.</summary>
    public string MetricName { get; }

    /// <summary><c>items</c> (or <c>products</c> when there is no <c>items</c>) become <c>Items</c> with <see cref="ItemTable"/>.</summary>
    public bool MapsItems { get; }

    public RenameTable Properties { get; }

    // Several sources of one target: the first present wins, the later ones are kept as sent. RudderStack's names come
    // first, Segment's after them (spec 4).
    public static readonly EcommerceEvent ViewedProduct = new("Viewed Product", mapsItems: false,
        ("name", "ProductName"), ("product_id", "ProductID"), ("productId", "ProductID"), ("id", "ProductID"), ("sku", "SKU"),
        ("image_url", "ImageURL"), ("imageUrl", "ImageURL"), ("url", "URL"), ("productUrl", "URL"),
        ("brand", "Brand"), ("price", "Price"), ("compare_at_price", "CompareAtPrice"), ("categories", "Categories"),
        new Rename("category", "Categories", WrapStringInList: true));

    public static readonly EcommerceEvent AddedToCart = new("Added to Cart", mapsItems: true,
        ("name", "AddedItemProductName"), ("product_id", "AddedItemProductID"), ("productId", "AddedItemProductID"),
        ("id", "AddedItemProductID"), ("sku", "AddedItemSKU"),
        ("image_url", "AddedItemImageURL"), ("imageUrl", "AddedItemImageURL"), ("url", "AddedItemURL"), ("productUrl", "AddedItemURL"),
        ("price", "AddedItemPrice"), ("quantity", "AddedItemQuantity"), ("categories", "AddedItemCategories"),
        new Rename("category", "AddedItemCategories", WrapStringInList: true), ("item_names", "ItemNames"),
        ("checkout_url", "CheckoutURL"), ("items", "Items"));

    public static readonly EcommerceEvent StartedCheckout = new("Started Checkout", mapsItems: true,
        ("categories", "Categories"), ("item_names", "ItemNames"), ("items", "Items"), ("checkout_url", "CheckoutURL"));

    /// <summary>Each element of <c>items</c> in Added to Cart and Started Checkout (the doc's names, spec 5).</summary>
    public static readonly RenameTable ItemTable = new(
        ("product_id", "ProductID"), ("productId", "ProductID"), ("id", "ProductID"), ("sku", "SKU"), ("name", "ProductName"),
        ("quantity", "Quantity"), ("price", "Price"), ("total", "RowTotal"), ("row_total", "RowTotal"),
        ("url", "URL"), ("productUrl", "URL"), ("image_url", "ImageURL"), ("imageUrl", "ImageURL"),
        ("categories", "ProductCategories"), new Rename("category", "ProductCategories", WrapStringInList: true));
}

/// <summary>
/// The tables of Order Completed under <c>Klaviyo__OrderCompleted=placedOrder</c> (spec 5, track): Placed Order's
/// properties and item lists, and each Ordered Product's fields. Klaviyo's own names for its revenue metrics.
/// </summary>
internal static class OrderEvents
{
    /// <summary>Placed Order: properties renamed; every other property is kept as sent.</summary>
    public static readonly RenameTable PlacedOrderProperties = new(
        ("order_id", "OrderId"), ("orderId", "OrderId"), ("coupon", "DiscountCode"), ("discount", "DiscountValue"));

    /// <summary>Placed Order's <c>Items</c>: each item through <see cref="EcommerceEvent.ItemTable"/>, plus these.</summary>
    public const string ItemPrice = "ItemPrice";
    public const string RowTotal = "RowTotal";

    /// <summary>Placed Order's lists gathered over the items (distinct values, in item order): name and item keys read.</summary>
    public static readonly (string Name, string[] ItemKeys)[] ItemLists =
    [
        ("ItemNames", ["name"]),
        ("Categories", ["categories", "category"]),
        ("Brands", ["brand"]),
    ];

    /// <summary>Ordered Product: one item's fields (its other keys are kept as sent).</summary>
    public static readonly RenameTable OrderedProduct = new(
        ("product_id", "ProductID"), ("productId", "ProductID"), ("id", "ProductID"), ("sku", "SKU"), ("name", "ProductName"),
        ("quantity", "Quantity"), ("price", ItemPrice), ("total", RowTotal), ("row_total", RowTotal),
        ("url", "ProductURL"), ("productUrl", "ProductURL"), ("image_url", "ImageURL"), ("imageUrl", "ImageURL"),
        ("categories", "Categories"), new Rename("category", "Categories", WrapStringInList: true), ("brand", "ProductBrand"));

    /// <summary>The item keys of a row total as sent, first present wins; else <c>price × quantity</c>.</summary>
    public static readonly string[] RowTotalKeys = ["total", "row_total"];
}

/// <summary>One source key and the Klaviyo name it is written under; <paramref name="WrapStringInList"/>: a string
/// value is written as a one-element list (Segment's <c>category</c> where Klaviyo expects categories).</summary>
internal readonly record struct Rename(string From, string To, bool WrapStringInList = false)
{
    public static implicit operator Rename((string From, string To) pair) => new(pair.From, pair.To);
}

/// <summary>A source-key → target-key table over raw UTF-8 names.</summary>
internal sealed class RenameTable
{
    private readonly Utf8KeyTable _sources;
    private readonly Utf8KeyTable _targets;
    private readonly JsonEncodedText[] _targetNames;
    private readonly byte[][][] _sourcesOfTarget;
    private readonly byte[][][] _earlierSources;
    private readonly bool[] _wrapStringInList;

    public RenameTable(params Rename[] pairs)
    {
        _sources = new Utf8KeyTable(Array.ConvertAll(pairs, p => p.From));
        _targetNames = Array.ConvertAll(pairs, p => JsonEncodedText.Encode(p.To));
        _wrapStringInList = Array.ConvertAll(pairs, p => p.WrapStringInList);
        var targets = pairs.Select(p => p.To).Distinct().ToArray();
        _targets = new Utf8KeyTable(targets);
        _sourcesOfTarget = Array.ConvertAll(targets, t => pairs.Where(p => p.To == t).Select(p => System.Text.Encoding.UTF8.GetBytes(p.From)).ToArray());
        _earlierSources = pairs.Select((p, i) => pairs.Take(i).Where(e => e.To == p.To).Select(e => System.Text.Encoding.UTF8.GetBytes(e.From)).ToArray()).ToArray();
    }

    /// <summary>The index of a source key, or -1.</summary>
    public int SourceIndex(JsonProperty property) => _sources.IndexOf(property);

    public JsonEncodedText Target(int sourceIndex) => _targetNames[sourceIndex];

    /// <summary>True when a source listed before <paramref name="sourceIndex"/> for the same target is present in
    /// <paramref name="obj"/>: that one wins (first present), and this one is kept under its own name.</summary>
    public bool IsOutranked(JsonElement obj, int sourceIndex)
    {
        foreach (var earlier in _earlierSources[sourceIndex])
        {
            if (JsonRead.Get(obj, earlier).IsPresent())
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Writes the value of source <paramref name="sourceIndex"/> under its target name.</summary>
    public void WriteMapped(Utf8JsonWriter writer, int sourceIndex, JsonElement value)
    {
        writer.WritePropertyName(_targetNames[sourceIndex]);
        if (_wrapStringInList[sourceIndex] && value.ValueKind == JsonValueKind.String)
        {
            writer.WriteStartArray();
            value.WriteTo(writer);
            writer.WriteEndArray();
            return;
        }
        value.WriteTo(writer);
    }

    /// <summary>
    /// True when <paramref name="property"/> carries a target name (say <c>ProductName</c>) whose source (<c>name</c>) is
    /// also present in <paramref name="obj"/>: the mapped value wins, so the as-sent one is not written twice.
    /// </summary>
    public bool IsShadowed(JsonElement obj, JsonProperty property)
    {
        var target = _targets.IndexOf(property);
        if (target < 0)
        {
            return false;
        }
        foreach (var source in _sourcesOfTarget[target])
        {
            if (obj.TryGetProperty(source, out var value) && value.ValueKind != JsonValueKind.Null)
            {
                return true;
            }
        }
        return false;
    }
}
