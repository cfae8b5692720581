using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

/// <summary>Segment's field names (spec 4): read as fallbacks after RudderStack's, first present wins.</summary>
[TestClass]
public sealed class SegmentFieldNamesTests
{
    private static JsonObject Track(string name, string properties) =>
        Attributes(Single(Transforms.Run("""{"type":"track","userId":"u-1","messageId":"m-1","event":"NAME","properties":PROPS}"""
            .Replace("NAME", name, StringComparison.Ordinal).Replace("PROPS", properties, StringComparison.Ordinal)), KlaviyoEndpoint.CreateEvent));

    private static void AssertJson(string expected, JsonNode? actual) =>
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), actual?.ToJsonString());

    [TestMethod]
    public void ProductViewed_WithSegmentNames_MapsThemLikeRudderStacks()
    {
        var properties = Track("Product Viewed", """{"productId":"p1","imageUrl":"https://i/p1.png","productUrl":"https://s/p1","category":"Mugs","name":"Mug"}""")["properties"];

        AssertJson("""{"ProductID":"p1","ImageURL":"https://i/p1.png","URL":"https://s/p1","Categories":["Mugs"],"ProductName":"Mug"}""", properties);
    }

    [TestMethod]
    public void ProductViewed_WithRudderStackAndSegmentNames_RudderStacksWinAndSegmentsAreKeptAsSent()
    {
        var properties = Track("Product Viewed", """
            {"productId":"seg","product_id":"rs","id":"other","imageUrl":"seg-i","image_url":"rs-i","url":"rs-u","productUrl":"seg-u",
             "categories":["rs"],"category":"seg"}
            """)["properties"];

        AssertJson("""
            {"productId":"seg","ProductID":"rs","id":"other","imageUrl":"seg-i","ImageURL":"rs-i","URL":"rs-u","productUrl":"seg-u",
             "Categories":["rs"],"category":"seg"}
            """, properties);
    }

    [TestMethod]
    [DataRow("""{"id":"p9"}""", """{"ProductID":"p9"}""", DisplayName = "id when no product_id or productId")]
    [DataRow("""{"id":"p9","productId":"p1"}""", """{"id":"p9","ProductID":"p1"}""", DisplayName = "productId before id")]
    [DataRow("""{"category":["a","b"]}""", """{"Categories":["a","b"]}""", DisplayName = "a category list is sent as it is")]
    public void ProductViewed_ProductIdAndCategoryFallbacks(string properties, string expected)
    {
        AssertJson(expected, Track("Product Viewed", properties)["properties"]);
    }

    [TestMethod]
    public void ProductAdded_WithSegmentNames_MapsTheAddedItem()
    {
        var properties = Track("Product Added", """{"productId":"p1","imageUrl":"i","productUrl":"u","category":"Mugs"}""")["properties"];

        AssertJson("""{"AddedItemProductID":"p1","AddedItemImageURL":"i","AddedItemURL":"u","AddedItemCategories":["Mugs"]}""", properties);
    }

    [TestMethod]
    public void CheckoutStarted_SegmentProductsAndOrderId_MapItemsAndUniqueId()
    {
        var attributes = Track("Checkout Started", """
            {"orderId":"o-77","products":[{"productId":"p1","imageUrl":"i1","productUrl":"u1","category":"Mugs","quantity":2},
                                          {"id":"p2","product_id":"p2-rs","category":"Cups"}]}
            """);

        Assert.AreEqual("o-77", (string?)attributes["unique_id"]);
        AssertJson("""
            [{"ProductID":"p1","ImageURL":"i1","URL":"u1","ProductCategories":["Mugs"],"Quantity":2},
             {"id":"p2","ProductID":"p2-rs","ProductCategories":["Cups"]}]
            """, attributes["properties"]!["Items"]);
    }

    [TestMethod]
    public void CheckoutStarted_WithOrderIdAndOrder_id_RudderStacksWins()
    {
        Assert.AreEqual("o-rs", (string?)Track("Checkout Started", """{"order_id":"o-rs","orderId":"o-seg"}""")["unique_id"]);
    }

    [TestMethod]
    public void CheckoutStarted_WithBadOrderId_NamesSegmentsField()
    {
        var invalid = Invalid(Transforms.Run("""{"type":"track","userId":"u-1","event":"Checkout Started","properties":{"orderId":{"x":1}}}"""));

        Assert.AreEqual("properties.orderId", invalid.Field);
    }

    [TestMethod]
    [DataRow("""{"traits":{"phoneNumber":"+1 (415) 555-2671"}}""", DisplayName = "traits")]
    [DataRow("""{"context":{"traits":{"phoneNumber":"+14155552671"}}}""", DisplayName = "context.traits")]
    public void Identify_WithPhoneNumber_SendsItAsPhoneNumberAndNotAsAProperty(string fields)
    {
        var json = """{"type":"identify","userId":"u-1",""" + fields[1..];
        var profile = Attributes(Requests(Transforms.Run(json))[0]);

        Assert.AreEqual("+14155552671", (string?)profile["phone_number"]);
        Assert.IsNull(profile["properties"]?["phoneNumber"]);
    }

    [TestMethod]
    public void Identify_WithPhoneAndPhoneNumber_PhoneWins()
    {
        var profile = Attributes(Requests(Transforms.Run("""{"type":"identify","userId":"u-1","traits":{"phoneNumber":"+14155550000","phone":"+14155552671"}}"""))[0]);

        Assert.AreEqual("+14155552671", (string?)profile["phone_number"]);
    }

    [TestMethod]
    public void Track_WithOnlyAPropertiesPhoneNumber_IsIdentifiedByIt()
    {
        var attributes = Attributes(Single(Transforms.Run("""{"type":"track","event":"Called","properties":{"phoneNumber":"+14155552671"}}"""), KlaviyoEndpoint.CreateEvent));

        Assert.AreEqual("+14155552671", (string?)attributes["profile"]!["data"]!["attributes"]!["phone_number"]);
        Assert.IsNull(attributes["properties"]!["phoneNumber"]);
    }

    [TestMethod]
    public void Identify_WithIntegrationsKlaviyoListId_AddsToThatList()
    {
        var requests = Requests(Transforms.Run("""
            {"type":"identify","userId":"u-1","traits":{"email":"e@example.com"},"integrations":{"Klaviyo":{"listId":"SEG1"}}}
            """, o => o.ListId = "DEFAULT"));

        Assert.AreEqual("/api/lists/SEG1/relationships/profiles", requests[1].Path);
    }

    [TestMethod]
    public void Identify_WithPropertiesListIdAndIntegrationsListId_PropertiesWins()
    {
        var requests = Requests(Transforms.Run("""
            {"type":"identify","userId":"u-1","traits":{"email":"e@example.com"},"properties":{"listId":"RS1"},"integrations":{"Klaviyo":{"listId":"SEG1"}}}
            """));

        Assert.AreEqual("/api/lists/RS1/relationships/profiles", requests[1].Path);
    }

    [TestMethod]
    [DataRow("""{"Klaviyo":true}""", DisplayName = "Klaviyo: true")]
    [DataRow("""{"All":false}""", DisplayName = "no Klaviyo key")]
    [DataRow("""true""", DisplayName = "not an object")]
    public void Identify_WithIntegrationsWithoutAListId_UsesTheSetting(string integrations)
    {
        var requests = Requests(Transforms.Run("""{"type":"identify","userId":"u-1","traits":{"email":"e@example.com"},"integrations":INT}"""
            .Replace("INT", integrations, StringComparison.Ordinal), o => o.ListId = "DEFAULT"));

        Assert.AreEqual("/api/lists/DEFAULT/relationships/profiles", requests[1].Path);
    }

    [TestMethod]
    public void Identify_WithBadIntegrationsListId_NamesTheField()
    {
        var invalid = Invalid(Transforms.Run("""{"type":"identify","userId":"u-1","integrations":{"Klaviyo":{"listId":"../x"}}}"""));

        Assert.AreEqual("integrations.Klaviyo.listId", invalid.Field);
    }
}
