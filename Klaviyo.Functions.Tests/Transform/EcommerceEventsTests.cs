using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

[TestClass]
public sealed class EcommerceEventsTests
{
    private static JsonObject Event(string name, string properties, out string metric)
    {
        var json = """{"type":"track","userId":"u-1","messageId":"m-1","event":""" + JsonValue.Create(name).ToJsonString() + ""","properties":""" + properties + "}";
        var attributes = Attributes(Single(Transforms.Run(json), KlaviyoEndpoint.CreateEvent));
        metric = (string)attributes["metric"]!["data"]!["attributes"]!["name"]!;
        return attributes;
    }

    [TestMethod]
    [DataRow("Product Viewed", "Viewed Product")]
    [DataRow("product clicked", "Viewed Product")]
    [DataRow("  PRODUCT ADDED ", "Added to Cart")]
    [DataRow("Checkout Started", "Started Checkout")]
    [DataRow("Order Completed", "Order Completed")]
    [DataRow("Product Removed", "Product Removed")]
    public void Track_WithEcommerceName_ConvertsMetricName(string incoming, string expected)
    {
        Event(incoming, "{}", out var metric);

        Assert.AreEqual(expected, metric);
    }

    [TestMethod]
    public void Track_ProductViewed_RenamesTablePropertiesAndKeepsOthers()
    {
        var properties = Event("Product Viewed", """
            {"name":"Hat","product_id":"p1","sku":"S1","image_url":"i","url":"u","brand":"B","price":9.5,
             "compare_at_price":12,"categories":["hats"],"color":"red","items":[{"sku":"x"}]}
            """, out _)["properties"]!;

        var expected = JsonNode.Parse("""
            {"ProductName":"Hat","ProductID":"p1","SKU":"S1","ImageURL":"i","URL":"u","Brand":"B","Price":9.5,
             "CompareAtPrice":12,"Categories":["hats"],"color":"red","items":[{"sku":"x"}]}
            """);
        Assert.IsTrue(JsonNode.DeepEquals(expected, properties), properties.ToJsonString());
    }

    [TestMethod]
    public void Track_ProductAdded_RenamesTablePropertiesAndItems()
    {
        var properties = Event("Product Added", """
            {"name":"Hat","product_id":"p1","sku":"S1","image_url":"i","url":"u","price":9.5,"quantity":2,
             "categories":["hats"],"item_names":["Hat"],"checkout_url":"c","brand":"kept",
             "items":[{"product_id":"p1","sku":"S1","name":"Hat","quantity":2,"price":9.5,"row_total":19,"url":"u","image_url":"i","categories":["hats"],"size":"M"}]}
            """, out _)["properties"]!;

        var expected = JsonNode.Parse("""
            {"AddedItemProductName":"Hat","AddedItemProductID":"p1","AddedItemSKU":"S1","AddedItemImageURL":"i","AddedItemURL":"u",
             "AddedItemPrice":9.5,"AddedItemQuantity":2,"AddedItemCategories":["hats"],"ItemNames":["Hat"],"CheckoutURL":"c","brand":"kept",
             "Items":[{"ProductID":"p1","SKU":"S1","ProductName":"Hat","Quantity":2,"Price":9.5,"RowTotal":19,"URL":"u","ImageURL":"i","ProductCategories":["hats"],"size":"M"}]}
            """);
        Assert.IsTrue(JsonNode.DeepEquals(expected, properties), properties.ToJsonString());
    }

    [TestMethod]
    public void Track_CheckoutStarted_RenamesTableAndUsesOrderIdAsUniqueId()
    {
        var attributes = Event("Checkout Started", """
            {"order_id":"o-9","categories":["c"],"item_names":["A"],"checkout_url":"u","coupon":"X","value":10,
             "items":[{"product_id":"p","total":5,"row_total":4}]}
            """, out _);

        var expected = JsonNode.Parse("""
            {"order_id":"o-9","Categories":["c"],"ItemNames":["A"],"CheckoutURL":"u","coupon":"X",
             "Items":[{"ProductID":"p","RowTotal":5,"row_total":4}]}
            """);
        Assert.IsTrue(JsonNode.DeepEquals(expected, attributes["properties"]), attributes["properties"]!.ToJsonString());
        Assert.AreEqual("o-9", (string?)attributes["unique_id"]);
        Assert.AreEqual(10.0, (double)attributes["value"]!);
    }

    [TestMethod]
    public void Track_CheckoutStartedWithNumericOrderId_SendsUniqueIdAsString()
    {
        var attributes = Event("Checkout Started", """{"order_id":123}""", out _);

        Assert.AreEqual("123", (string?)attributes["unique_id"]);
    }

    [TestMethod]
    public void Track_CheckoutStartedWithoutOrderId_UsesMessageId()
    {
        Assert.AreEqual("m-1", (string?)Event("Checkout Started", "{}", out _)["unique_id"]);
    }

    [TestMethod]
    public void Track_OrderCompletedWithOrderId_UsesMessageIdAsUniqueId()
    {
        Assert.AreEqual("m-1", (string?)Event("Order Completed", """{"order_id":"o-1"}""", out _)["unique_id"]);
    }

    [TestMethod]
    public void Track_CheckoutStartedWithProductsOnly_MapsProductsAsItems()
    {
        var properties = Event("Checkout Started", """{"products":[{"sku":"S","price":1}]}""", out _)["properties"]!;

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"Items":[{"SKU":"S","Price":1}]}"""), properties), properties.ToJsonString());
    }

    [TestMethod]
    public void Track_CheckoutStartedWithItemsAndProducts_MapsItemsAndKeepsProducts()
    {
        var properties = Event("Checkout Started", """{"items":[{"sku":"I"}],"products":[{"sku":"P"}]}""", out _)["properties"]!;

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"Items":[{"SKU":"I"}],"products":[{"sku":"P"}]}"""), properties), properties.ToJsonString());
    }

    [TestMethod]
    public void Track_ProductViewedWithTargetNameAlsoSent_MappedValueWinsOnce()
    {
        var properties = Event("Product Viewed", """{"ProductName":"old","name":"new"}""", out _)["properties"]!;

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"ProductName":"new"}"""), properties), properties.ToJsonString());
    }

    [TestMethod]
    [DataRow("""{"items":"hat"}""", "properties.items", "must be an array")]
    [DataRow("""{"items":{"sku":"x"}}""", "properties.items", "must be an array")]
    [DataRow("""{"products":7}""", "properties.products", "must be an array")]
    [DataRow("""{"items":[{"sku":"a"},"b"]}""", "properties.items[1]", "must be an object")]
    public void Track_AddedToCartWithBadItems_IsInvalidNamingTheField(string properties, string field, string rule)
    {
        var json = """{"type":"track","userId":"u-1","event":"Product Added","properties":""" + properties + "}";
        var invalid = Invalid(Transforms.Run(json));

        Assert.AreEqual(field, invalid.Field);
        Assert.AreEqual(rule, invalid.Rule);
    }

    [TestMethod]
    public void Track_OtherEventWithItemsString_KeepsItAsSent()
    {
        var properties = Event("Order Completed", """{"items":"hat"}""", out _)["properties"]!;

        Assert.AreEqual("hat", (string?)properties["items"]);
    }
}
