using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.Transform;

/// <summary>Order Completed under <c>Klaviyo__OrderCompleted=placedOrder</c> (spec 5, track): Placed Order plus one
/// Ordered Product per item. Every body is checked against its OpenAPI schema by <see cref="TransformAssertions.Requests"/>.</summary>
[TestClass]
public sealed class OrderMappingTests
{
    private static void PlacedOrder(KlaviyoOptions o) => o.OrderCompleted = KlaviyoOptions.OrderCompletedAsPlacedOrder;

    private const string ThreeProducts = """
        {"type":"track","messageId":"m-order-1","userId":"u-1","event":"Order Completed","timestamp":"2026-11-20T10:00:00Z",
         "context":{"traits":{"email":"ada@example.com"}},
         "properties":{"order_id":"1001","revenue":42.5,"currency":"EUR","coupon":"WINTER","discount":5,"affiliation":"web",
           "products":[
             {"product_id":"P1","sku":"S1","name":"Mug","price":10,"quantity":2,"brand":"Acme","categories":["Kitchen","Gifts"],"url":"https://shop.test/p1","image_url":"https://shop.test/p1.png","color":"red"},
             {"product_id":"P2","name":"Tea","price":2.5,"quantity":3,"total":7.5,"brand":"Leaf","category":"Food"},
             {"product_id":"P1","name":"Mug","price":10,"quantity":1,"brand":"Acme","categories":["Kitchen"]}]}}
        """;

    private static IReadOnlyList<JsonObject> Events(TransformResult result) =>
        TransformAssertions.Requests(result).Select(r =>
        {
            Assert.AreEqual(KlaviyoEndpoint.CreateEvent, r.Endpoint);
            return TransformAssertions.Attributes(r);
        }).ToList();

    private static string Order(string messageId, string products) =>
        $$"""{"type":"track","messageId":"{{messageId}}","userId":"u-1","event":"Order Completed","properties":{"order_id":"1","products":[""" + products + "]}}";

    private static string Metric(JsonObject attributes) => (string)attributes["metric"]!["data"]!["attributes"]!["name"]!;

    private static string? UniqueId(JsonObject attributes) => (string?)attributes["unique_id"];

    [TestMethod]
    public void Order_WithThreeProductsTwoSharingAnId_PlacedOrderThenOneOrderedProductEachWithDistinctIds()
    {
        var events = Events(Transforms.Run(ThreeProducts, PlacedOrder));

        Assert.AreSequenceEqual(new[] { "Placed Order", "Ordered Product", "Ordered Product", "Ordered Product" }, events.Select(Metric).ToArray());
        Assert.AreSequenceEqual(new[] { "1001", "1001:P1", "1001:P2", "1001:P1#2" }, events.Select(UniqueId).ToArray());
        Assert.IsTrue(events.All(e => (string?)e["time"] == "2026-11-20T10:00:00Z"), "one time for the whole order");
        Assert.IsTrue(events.All(e => e["profile"]!.ToJsonString() == events[0]["profile"]!.ToJsonString()), "one profile for the whole order");
        Assert.AreEqual("ada@example.com", (string?)events[0]["profile"]!["data"]!["attributes"]!["email"]);

        var placed = events[0];
        Assert.AreEqual(42.5, (double)placed["value"]!);
        Assert.AreEqual("EUR", (string?)placed["value_currency"]);
        var properties = placed["properties"]!.AsObject();
        Assert.AreEqual("1001", (string?)properties["OrderId"]);
        Assert.AreEqual("WINTER", (string?)properties["DiscountCode"]);
        Assert.AreEqual(5, (int)properties["DiscountValue"]!);
        Assert.AreEqual("web", (string?)properties["affiliation"], "other properties as sent");
        Assert.AreEqual("""["Mug","Tea"]""", properties["ItemNames"]!.ToJsonString());
        Assert.AreEqual("""["Kitchen","Gifts","Food"]""", properties["Categories"]!.ToJsonString());
        Assert.AreEqual("""["Acme","Leaf"]""", properties["Brands"]!.ToJsonString());
        foreach (var consumed in new[] { "products", "items", "order_id", "coupon", "discount", "revenue", "currency" })
        {
            Assert.IsFalse(properties.ContainsKey(consumed), $"{consumed} is not repeated");
        }
        var items = properties["Items"]!.AsArray();
        Assert.HasCount(3, items);
        Assert.AreEqual("P1", (string?)items[0]!["ProductID"]);
        Assert.AreEqual("Mug", (string?)items[0]!["ProductName"]);
        Assert.AreEqual(10, (int)items[0]!["ItemPrice"]!);
        Assert.AreEqual(20m, (decimal)items[0]!["RowTotal"]!, "price × quantity when no total is sent");
        Assert.AreEqual(7.5m, (decimal)items[1]!["RowTotal"]!, "the total as sent");
        Assert.AreEqual("red", (string?)items[0]!["color"], "other item keys as sent");

        var mug = events[1]["properties"]!.AsObject();
        Assert.AreEqual("1001", (string?)mug["OrderId"]);
        Assert.AreEqual("P1", (string?)mug["ProductID"]);
        Assert.AreEqual("S1", (string?)mug["SKU"]);
        Assert.AreEqual("Mug", (string?)mug["ProductName"]);
        Assert.AreEqual(2, (int)mug["Quantity"]!);
        Assert.AreEqual(10, (int)mug["ItemPrice"]!);
        Assert.AreEqual(20m, (decimal)mug["RowTotal"]!);
        Assert.AreEqual("https://shop.test/p1", (string?)mug["ProductURL"]);
        Assert.AreEqual("https://shop.test/p1.png", (string?)mug["ImageURL"]);
        Assert.AreEqual("""["Kitchen","Gifts"]""", mug["Categories"]!.ToJsonString());
        Assert.AreEqual("Acme", (string?)mug["ProductBrand"]);
        Assert.AreEqual("red", (string?)mug["color"]);
        Assert.AreEqual(20m, (decimal)events[1]["value"]!, "an item's value is its row total");
        Assert.AreEqual("EUR", (string?)events[1]["value_currency"], "the order's currency");
        Assert.AreEqual("""["Food"]""", events[2]["properties"]!["Categories"]!.ToJsonString(), "Segment's category string as a list");
        Assert.AreEqual(7.5m, (decimal)events[2]["value"]!);
    }

    [TestMethod]
    public void Order_TransformedTwice_SameUniqueIdsAndAllDistinctWithinTheOrder()
    {
        var payload = ThreeProducts.Replace("\"product_id\":\"P2\",", "", StringComparison.Ordinal); // an item keyed by its index

        var first = Events(Transforms.Run(payload, PlacedOrder)).Select(UniqueId).ToList();
        var second = Events(new KlaviyoTransformer(Transforms.Options(PlacedOrder), new FakeTimeProvider(Transforms.Now.AddHours(3)))
            .Transform(System.Text.Encoding.UTF8.GetBytes(payload))).Select(UniqueId).ToList();

        Assert.AreSequenceEqual(first, second, "a retry or a replay sends the same ids");
        Assert.HasCount(first.Count, first.Distinct().ToList(), "no two events of one order share an id: " + string.Join(", ", first));
        Assert.AreEqual("1001:1", first[2], "an item without product_id, productId, sku or id is keyed by its index");
    }

    [TestMethod]
    public void Order_WithoutProducts_PlacedOrderAlone()
    {
        var events = Events(Transforms.Run("""{"type":"track","messageId":"m-2","userId":"u-1","event":"Order Completed","properties":{"order_id":"1002","total":12}}""", PlacedOrder));

        var placed = events.Single();
        Assert.AreEqual("Placed Order", Metric(placed));
        Assert.AreEqual("1002", UniqueId(placed));
        Assert.AreEqual(12, (int)placed["value"]!);
        Assert.AreEqual("""{"OrderId":"1002"}""", placed["properties"]!.ToJsonString());
    }

    [TestMethod]
    public void Order_WithSegmentOrderIdOnlyAndItems_KeysByTheOrderIdAsText()
    {
        var events = Events(Transforms.Run("""
            {"type":"track","messageId":"m-3","userId":"u-1","event":"Order Completed",
             "properties":{"orderId":5005,"items":[{"productId":"A","price":3},{"sku":"B"}]}}
            """, PlacedOrder));

        Assert.AreSequenceEqual(new[] { "5005", "5005:A", "5005:B" }, events.Select(UniqueId).ToArray());
        Assert.AreEqual(5005, (int)events[0]["properties"]!["OrderId"]!, "OrderId as sent");
        Assert.AreEqual("A", (string?)events[1]["properties"]!["ProductID"]);
        Assert.IsNull(events[1]["value"], "no row total: no value");
    }

    [TestMethod]
    public void Order_WithoutOrderId_KeysByTheMessageId()
    {
        var events = Events(Transforms.Run("""{"type":"track","messageId":"m-4","userId":"u-1","event":"Order Completed","properties":{"products":[{"product_id":"P1"}]}}""", PlacedOrder));

        Assert.AreSequenceEqual(new[] { "m-4", "m-4:P1" }, events.Select(UniqueId).ToArray());
        Assert.IsFalse(events[0]["properties"]!.AsObject().ContainsKey("OrderId"));
    }

    [TestMethod]
    [DataRow("Order Completed")]
    [DataRow("  order COMPLETED ")]
    public void Order_NameInAnyCaseTrimmed_BecomesPlacedOrder(string name)
    {
        var events = Events(Transforms.Run("""{"type":"track","messageId":"m-5","userId":"u-1","event":""" + "\"" + name + "\"" + ""","properties":{"order_id":"9"}}""", PlacedOrder));

        Assert.AreEqual("Placed Order", Metric(events.Single()));
    }

    [TestMethod]
    public void Order_WithMetricNameSettings_UsesThem()
    {
        var events = Events(Transforms.Run("""{"type":"track","messageId":"m-6","userId":"u-1","event":"Order Completed","properties":{"order_id":"9","products":[{"sku":"S"}]}}""",
            o => { PlacedOrder(o); o.PlacedOrderMetric = "Bestellung"; o.OrderedProductMetric = "Bestellter Artikel"; }));

        Assert.AreSequenceEqual(new[] { "Bestellung", "Bestellter Artikel" }, events.Select(Metric).ToArray());
    }

    [TestMethod]
    public void Order_UnderTheDefaultSetting_StaysOneOrderCompletedEvent()
    {
        var events = Events(Transforms.Run(ThreeProducts));

        var only = events.Single();
        Assert.AreEqual("Order Completed", Metric(only));
        Assert.AreEqual("m-order-1", UniqueId(only));
        Assert.HasCount(3, only["properties"]!["products"]!.AsArray(), "properties as sent");
    }

    [TestMethod]
    public void Order_With501Items_InvalidNamingProductsAndTheLimit()
    {
        var products = string.Join(",", Enumerable.Range(0, 501).Select(i => $$"""{"product_id":"P{{i}}"}"""));

        var invalid = TransformAssertions.Invalid(Transforms.Run(Order("m-7", products), PlacedOrder));

        Assert.AreEqual("properties.products", invalid.Field);
        Assert.Contains("at most 500 items (Relay__MaxItemsPerOrder)", invalid.Rule);
        Assert.Contains("501", invalid.Rule);
    }

    [TestMethod]
    public void Order_With500Items_Is501Events()
    {
        var products = string.Join(",", Enumerable.Range(0, 500).Select(i => $$"""{"product_id":"P{{i}}"}"""));

        var planned = TransformAssertions.Planned(Transforms.Run(Order("m-8", products), PlacedOrder));

        Assert.HasCount(501, ((EventParts)planned.Parts).Events);
    }

    [TestMethod]
    public void Order_OverAMaxItemsPerOrderSetting_Invalid()
    {
        var transformer = new KlaviyoTransformer(Transforms.Options(PlacedOrder), new FakeTimeProvider(Transforms.Now), maxItemsPerOrder: 2);

        var invalid = TransformAssertions.Invalid(transformer.Transform("""{"type":"track","messageId":"m","userId":"u-1","event":"Order Completed","properties":{"items":[{},{},{}]}}"""u8));

        Assert.AreEqual("properties.items", invalid.Field);
        Assert.Contains("at most 2 items", invalid.Rule);
    }

    [TestMethod]
    [DataRow("""{"products":"P1"}""", "properties.products", "must be an array", DisplayName = "products not an array")]
    [DataRow("""{"products":[{"product_id":"P1"},"P2"]}""", "properties.products[1]", "must be an object", DisplayName = "a product that is not an object")]
    [DataRow("""{"order_id":true}""", "properties.order_id", "must be a string or a number", DisplayName = "order_id a boolean")]
    [DataRow("""{"orderId":{"id":1}}""", "properties.orderId", "must be a string or a number", DisplayName = "orderId an object")]
    [DataRow("""{"products":[{"product_id":["P1"]}]}""", "properties.products[0].product_id", "must be a string or a number", DisplayName = "product_id an array")]
    public void Order_BadInput_InvalidNamingTheField(string properties, string field, string rule)
    {
        var invalid = TransformAssertions.Invalid(Transforms.Run("""{"type":"track","messageId":"m-9","userId":"u-1","event":"Order Completed","properties":""" + properties + "}", PlacedOrder));

        Assert.AreEqual(field, invalid.Field);
        Assert.AreEqual(rule, invalid.Rule);
    }

    [TestMethod]
    public void Order_WithFlattenProperties_FlattensEveryEventsProperties()
    {
        var events = Events(Transforms.Run(ThreeProducts, o => { PlacedOrder(o); o.FlattenProperties = true; }));

        Assert.AreEqual("P1", (string?)events[0]["properties"]!["Items[0].ProductID"]);
        Assert.AreEqual("Mug", (string?)events[1]["properties"]!["ProductName"]);
    }

    [TestMethod]
    public void Order_InABulkCall_ValidEventsBulkCreateJobWithTheOrderInOneEntry()
    {
        var parts = (EventParts)TransformAssertions.Planned(Transforms.Run(ThreeProducts, PlacedOrder)).Parts;

        var call = global::Klaviyo.Functions.Bulk.EventsBulkBuilder.BuildMessages([parts.Events]).Single();

        KlaviyoSchemas.AssertValid(call.Request);
        Assert.HasCount(1, call.Entries, "one profile, one entry");
        Assert.HasCount(4, call.Entries[0]);
        Assert.IsTrue(call.Entries[0].All(e => e.SequenceEqual([0])), "every event carries the one message");
    }
}
