using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Ingest;

/// <summary>The ingest refuses an order the relay could never deliver under <c>Klaviyo__OrderCompleted=placedOrder</c>
/// (spec 7: the same checks as the transform), naming the field and the rule.</summary>
[TestClass]
public sealed class OrderIngestTests
{
    private static KlaviyoOptions Settings(string orderCompleted) => new() { PrivateApiKey = "pk_test_0123456789", OrderCompleted = orderCompleted };

    private static string Order(int items, string messageId = "order-1") =>
        $$"""{"type":"track","messageId":"{{messageId}}","userId":"u-1","event":"Order Completed","properties":{"order_id":"1","products":[""" +
        string.Join(",", Enumerable.Range(0, items).Select(i => $$"""{"product_id":"P{{i}}"}""")) + "]}}";

    [TestMethod]
    public async Task Events_OrderWith501ItemsUnderPlacedOrder_Answers400NamingProductsAndTheLimit()
    {
        var host = new IngestHost(klaviyo: Settings(KlaviyoOptions.OrderCompletedAsPlacedOrder));

        var response = await host.PostAsync("/api/events", $"[{Order(2, "small")},{Order(501)}]");

        Assert.AreEqual(400, response.Status, response.Body.GetRawText());
        Assert.AreEqual("application/problem+json", response.ContentType);
        var error = response.Errors.Single();
        Assert.AreEqual(1, error.GetProperty("index").GetInt32());
        Assert.AreEqual("order-1", error.GetProperty("messageId").GetString());
        Assert.AreEqual("properties.products", error.GetProperty("field").GetString());
        Assert.Contains("at most 500 items (Relay__MaxItemsPerOrder)", error.GetProperty("message").GetString()!);
        Assert.IsEmpty(host.Queue.Sent, "all or nothing: the valid order is not queued either");
    }

    [TestMethod]
    public async Task Events_OrderWith501ItemsUnderTheDefault_IsAcceptedAsOneEvent()
    {
        var host = new IngestHost(klaviyo: Settings(KlaviyoOptions.OrderCompletedAsEvent));

        var response = await host.PostAsync("/api/events", Order(501));

        Assert.AreEqual(202, response.Status, response.Body.GetRawText());
        Assert.HasCount(1, host.Queue.Sent);
    }

    [TestMethod]
    [DataRow("""{"products":{"sku":"S"}}""", "properties.products", "must be an array", DisplayName = "products an object")]
    [DataRow("""{"products":[7]}""", "properties.products[0]", "must be an object", DisplayName = "a product a number")]
    [DataRow("""{"order_id":[1]}""", "properties.order_id", "must be a string or a number", DisplayName = "order_id an array")]
    public async Task Events_BadOrderUnderPlacedOrder_Answers400NamingTheField(string properties, string field, string message)
    {
        var host = new IngestHost(klaviyo: Settings(KlaviyoOptions.OrderCompletedAsPlacedOrder));

        var response = await host.PostAsync("/api/events", """{"type":"track","userId":"u-1","event":"Order Completed","properties":""" + properties + "}");

        Assert.AreEqual(400, response.Status, response.Body.GetRawText());
        var error = response.Errors.Single();
        Assert.AreEqual(field, error.GetProperty("field").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString()!);
    }

    [TestMethod]
    public async Task Events_OrderWithoutOrderIdOrMessageIdUnderPlacedOrder_IsAcceptedKeyedByTheStampedMessageId()
    {
        var host = new IngestHost(klaviyo: Settings(KlaviyoOptions.OrderCompletedAsPlacedOrder));

        var response = await host.PostAsync("/api/events", """{"type":"track","userId":"u-1","event":"Order Completed","properties":{"products":[{"sku":"S"}]}}""");

        Assert.AreEqual(202, response.Status, response.Body.GetRawText());
    }
}
