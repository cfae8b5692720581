using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// The three e-commerce events of spec 5 (track) with their property and item tables, as data (the incoming names that
/// become them are <see cref="MappingTables.EcommerceRenames"/>). Source keys not in a
/// table are kept under their own names (RudderStack's legacy code drops them; spec 5 calls that a bug).
/// </summary>
internal sealed class EcommerceEvent
{
    private EcommerceEvent(string metricName, bool mapsItems, params (string From, string To)[] properties)
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

    public static readonly EcommerceEvent ViewedProduct = new("Viewed Product", mapsItems: false,
        ("name", "ProductName"), ("product_id", "ProductID"), ("sku", "SKU"), ("image_url", "ImageURL"), ("url", "URL"),
        ("brand", "Brand"), ("price", "Price"), ("compare_at_price", "CompareAtPrice"), ("categories", "Categories"));

    public static readonly EcommerceEvent AddedToCart = new("Added to Cart", mapsItems: true,
        ("name", "AddedItemProductName"), ("product_id", "AddedItemProductID"), ("sku", "AddedItemSKU"),
        ("image_url", "AddedItemImageURL"), ("url", "AddedItemURL"), ("price", "AddedItemPrice"),
        ("quantity", "AddedItemQuantity"), ("categories", "AddedItemCategories"), ("item_names", "ItemNames"),
        ("checkout_url", "CheckoutURL"), ("items", "Items"));

    public static readonly EcommerceEvent StartedCheckout = new("Started Checkout", mapsItems: true,
        ("categories", "Categories"), ("item_names", "ItemNames"), ("items", "Items"), ("checkout_url", "CheckoutURL"));

    /// <summary>Each element of <c>items</c> in Added to Cart and Started Checkout (the doc's names, spec 5).</summary>
    public static readonly RenameTable ItemTable = new(
        ("product_id", "ProductID"), ("sku", "SKU"), ("name", "ProductName"), ("quantity", "Quantity"), ("price", "Price"),
        ("total", "RowTotal"), ("row_total", "RowTotal"), ("url", "URL"), ("image_url", "ImageURL"),
        ("categories", "ProductCategories"));
}

/// <summary>A source-key → target-key table over raw UTF-8 names.</summary>
internal sealed class RenameTable
{
    private readonly Utf8KeyTable _sources;
    private readonly Utf8KeyTable _targets;
    private readonly JsonEncodedText[] _targetNames;
    private readonly byte[][][] _sourcesOfTarget;

    public RenameTable(params (string From, string To)[] pairs)
    {
        _sources = new Utf8KeyTable(Array.ConvertAll(pairs, p => p.From));
        _targetNames = Array.ConvertAll(pairs, p => JsonEncodedText.Encode(p.To));
        var targets = pairs.Select(p => p.To).Distinct().ToArray();
        _targets = new Utf8KeyTable(targets);
        _sourcesOfTarget = Array.ConvertAll(targets, t => pairs.Where(p => p.To == t).Select(p => System.Text.Encoding.UTF8.GetBytes(p.From)).ToArray());
    }

    /// <summary>The index of a source key, or -1.</summary>
    public int SourceIndex(JsonProperty property) => _sources.IndexOf(property);

    public JsonEncodedText Target(int sourceIndex) => _targetNames[sourceIndex];

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
