using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

[TestClass]
public sealed class FlattenPropertiesTests
{
    private static void Flatten(KlaviyoOptions o) => o.FlattenProperties = true;

    [TestMethod]
    public void Track_WithFlattenProperties_FlattensEventPropertiesToDottedKeys()
    {
        var json = """
            {"type":"track","userId":"u-1","event":"Order Completed","properties":{
              "shipping":{"method":"express","address":{"city":"Oslo"}},"tags":["a","b"],"empty":{},"none":[],
              "lines":[{"sku":"A","qty":1},{"sku":"B","meta":{"gift":true}}],"gone":{"x":null},"n":1}}
            """;
        var properties = Attributes(Single(Transforms.Run(json, Flatten), KlaviyoEndpoint.CreateEvent))["properties"]!;

        var expected = JsonNode.Parse("""
            {"shipping.method":"express","shipping.address.city":"Oslo","tags":["a","b"],"empty":{},"none":[],
             "lines[0].sku":"A","lines[0].qty":1,"lines[1].sku":"B","lines[1].meta.gift":true,"n":1}
            """);
        Assert.IsTrue(JsonNode.DeepEquals(expected, properties), properties.ToJsonString());
    }

    [TestMethod]
    public void Track_CheckoutStartedWithFlattenProperties_FlattensMappedItems()
    {
        var json = """{"type":"track","userId":"u-1","event":"Checkout Started","properties":{"items":[{"sku":"A","price":2}]}}""";
        var properties = Attributes(Single(Transforms.Run(json, Flatten), KlaviyoEndpoint.CreateEvent))["properties"]!;

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"Items[0].SKU":"A","Items[0].Price":2}"""), properties), properties.ToJsonString());
    }

    [TestMethod]
    public void Identify_WithFlattenProperties_FlattensProfileProperties()
    {
        var json = """{"type":"identify","userId":"u-1","traits":{"prefs":{"news":true,"lang":"en"},"tags":["x"]}}""";
        var properties = Attributes(Single(Transforms.Run(json, Flatten), KlaviyoEndpoint.ProfileImport))["properties"]!;

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"prefs.news":true,"prefs.lang":"en","tags":["x"]}"""), properties), properties.ToJsonString());
    }

    [TestMethod]
    public void Track_WithoutFlattenProperties_KeepsNesting()
    {
        var json = """{"type":"track","userId":"u-1","event":"X","properties":{"a":{"b":1}}}""";
        var properties = Attributes(Single(Transforms.Run(json), KlaviyoEndpoint.CreateEvent))["properties"]!;

        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"a":{"b":1}}"""), properties));
    }
}
