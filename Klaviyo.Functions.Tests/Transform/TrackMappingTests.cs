using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

[TestClass]
public sealed class TrackMappingTests
{
    [TestMethod]
    public void Track_WithRevenueAndCurrency_SetsValueAndValueCurrency()
    {
        var json = """{"type":"track","userId":"u-1","event":"Order Completed","messageId":"m-1","timestamp":"2026-11-20T10:00:00.000Z","properties":{"revenue":42.5,"currency":"EUR","order_id":"o-1","email":"a@example.com"}}""";
        var request = Single(Transforms.Run(json), KlaviyoEndpoint.CreateEvent);
        var attributes = Attributes(request);

        Assert.AreEqual(KlaviyoApi.CreateEventPath, request.Path);
        Assert.AreEqual("event", (string?)Body(request)["data"]!["type"]);
        Assert.AreEqual(42.5, (double)attributes["value"]!);
        Assert.AreEqual("EUR", (string?)attributes["value_currency"]);
        Assert.AreEqual("m-1", (string?)attributes["unique_id"]);
        Assert.AreEqual("2026-11-20T10:00:00Z", (string?)attributes["time"]);
        Assert.AreEqual("Order Completed", (string?)attributes["metric"]!["data"]!["attributes"]!["name"]);
        Assert.AreEqual("metric", (string?)attributes["metric"]!["data"]!["type"]);
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"order_id":"o-1"}"""), attributes["properties"]), attributes["properties"]!.ToJsonString());
        var profile = attributes["profile"]!["data"]!;
        Assert.AreEqual("profile", (string?)profile["type"]);
        Assert.AreEqual("a@example.com", (string?)profile["attributes"]!["email"]);
        Assert.AreEqual("u-1", (string?)profile["attributes"]!["external_id"]);
    }

    [TestMethod]
    [DataRow("""{"revenue":"12.50"}""", 12.5, DisplayName = "numeric string")]
    [DataRow("""{"value":7}""", 7.0, DisplayName = "value when no revenue")]
    [DataRow("""{"total":3.25}""", 3.25, DisplayName = "total when no revenue or value")]
    [DataRow("""{"revenue":1,"value":2,"total":3}""", 1.0, DisplayName = "revenue first")]
    [DataRow("""{"revenue":null,"value":2}""", 2.0, DisplayName = "null revenue is absent")]
    [DataRow("""{"revenue":0}""", 0.0, DisplayName = "zero kept")]
    public void Track_WithMoneyField_SetsValue(string properties, double expected)
    {
        var json = $$"""{"type":"track","userId":"u-1","event":"Paid","properties":{{properties}}}""";
        var attributes = Attributes(Single(Transforms.Run(json), KlaviyoEndpoint.CreateEvent));

        Assert.AreEqual(expected, (double)attributes["value"]!);
        Assert.IsEmpty(attributes["properties"]!.AsObject(), "money fields are consumed");
    }

    [TestMethod]
    public void Track_WithAnonymousIdOnly_UsesItAsExternalIdAndAnonymousId()
    {
        var json = """{"type":"track","anonymousId":"anon-9","event":"Clicked"}""";
        var profile = Attributes(Single(Transforms.Run(json), KlaviyoEndpoint.CreateEvent))["profile"]!["data"]!["attributes"]!;

        Assert.AreEqual("anon-9", (string?)profile["external_id"]);
        Assert.AreEqual("anon-9", (string?)profile["anonymous_id"]);
    }

    [TestMethod]
    public void Track_WithoutProperties_SendsEmptyPropertiesObject()
    {
        var attributes = Attributes(Single(Transforms.Run("""{"type":"track","userId":"u-1","event":"Clicked"}"""), KlaviyoEndpoint.CreateEvent));

        Assert.IsEmpty(attributes["properties"]!.AsObject());
        Assert.IsFalse(attributes.ContainsKey("value"));
        Assert.IsFalse(attributes.ContainsKey("unique_id"));
        Assert.IsFalse(attributes.ContainsKey("time"));
    }

    [TestMethod]
    public void Track_WithContextTraits_BuildsProfileAttributesFromThem()
    {
        var json = """{"type":"track","userId":"u-1","event":"Clicked","context":{"traits":{"email":"a@example.com","firstName":"Jane","city":"Oslo","plan":"pro","_kx":"kx"}}}""";
        var profile = Attributes(Single(Transforms.Run(json), KlaviyoEndpoint.CreateEvent))["profile"]!["data"]!["attributes"]!;

        Assert.AreEqual("a@example.com", (string?)profile["email"]);
        Assert.AreEqual("Jane", (string?)profile["first_name"]);
        Assert.AreEqual("Oslo", (string?)profile["location"]!["city"]);
        Assert.AreEqual("kx", (string?)profile["_kx"]);
        Assert.IsTrue(JsonNode.DeepEquals(JsonNode.Parse("""{"plan":"pro"}"""), profile["properties"]));
    }

    [TestMethod]
    public void Track_WithEventNameWithSpaces_TrimsMetricName()
    {
        var attributes = Attributes(Single(Transforms.Run("""{"type":"track","userId":"u-1","event":"  Signed Up "}"""), KlaviyoEndpoint.CreateEvent));

        Assert.AreEqual("Signed Up", (string?)attributes["metric"]!["data"]!["attributes"]!["name"]);
    }
}
