using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using static Klaviyo.Functions.Tests.TestSupport.TransformAssertions;

namespace Klaviyo.Functions.Tests.Transform;

[TestClass]
public sealed class TransformerBadInputTests
{
    [TestMethod]
    [DataRow("", DisplayName = "empty body")]
    [DataRow("{", DisplayName = "truncated")]
    [DataRow("not json", DisplayName = "text")]
    [DataRow("{\"type\":\"track\",}", DisplayName = "trailing comma")]
    [DataRow("[{\"type\":\"track\"}]", DisplayName = "array")]
    [DataRow("42", DisplayName = "number")]
    [DataRow("\"identify\"", DisplayName = "string")]
    [DataRow("null", DisplayName = "null")]
    public void Transform_WithBodyThatIsNotAnEventObject_IsMalformed(string body)
    {
        Assert.IsInstanceOfType<TransformResult.Malformed>(Transforms.Run(body));
    }

    [TestMethod]
    public void Transform_WithInvalidUtf8_IsMalformed()
    {
        byte[] body = [.. "{\"type\":\"track\",\"event\":\""u8, 0xC3, 0x28, .. "\"}"u8];

        Assert.IsInstanceOfType<TransformResult.Malformed>(Transforms.Transformer().Transform(body));
    }

    [TestMethod]
    public void Transform_WithNestingDeeperThan64_IsMalformed()
    {
        var json = """{"type":"track","userId":"u","event":"X","properties":{"a":""" + new string('[', 70) + new string(']', 70) + "}}";

        Assert.IsInstanceOfType<TransformResult.Malformed>(Transforms.Run(json));
    }

    [TestMethod]
    public void Transform_WithParsedElementThatIsNotAnObject_IsMalformed()
    {
        using var document = JsonDocument.Parse("[1,2]");

        Assert.IsInstanceOfType<TransformResult.Malformed>(Transforms.Transformer().Transform(document.RootElement));
    }

    [TestMethod]
    public void Transform_WithParsedElement_PlansLikeBytes()
    {
        using var document = JsonDocument.Parse("""{"type":"TRACK","userId":"u","event":"X"}""");

        Assert.AreEqual(KlaviyoEndpoint.CreateEvent, Single(Transforms.Transformer().Transform(document.RootElement), KlaviyoEndpoint.CreateEvent).Endpoint);
    }

    [TestMethod]
    [DataRow("""{"type":"alias","userId":"u","previousId":"p"}""")]
    [DataRow("""{"type":"Alias"}""")]
    public void Alias_Always_IsSkipped(string json)
    {
        var result = Transforms.Run(json);

        Assert.IsInstanceOfType<TransformResult.Skipped>(result);
        Assert.AreEqual(KlaviyoTransformer.AliasSkipReason, ((TransformResult.Skipped)result).Reason);
    }

    [TestMethod]
    [DataRow("""{"userId":"u"}""", "type", "is required")]
    [DataRow("""{"type":null,"userId":"u"}""", "type", "is required")]
    [DataRow("""{"type":7,"userId":"u"}""", "type", "must be a string")]
    [DataRow("""{"type":"purchase","userId":"u"}""", "type", "'purchase' is not one of identify, track, page, screen, group, alias, delete")]
    [DataRow("""{"type":"track","userId":"u"}""", "event", "is required for track events")]
    [DataRow("""{"type":"track","userId":"u","event":""}""", "event", "must not be empty")]
    [DataRow("""{"type":"track","userId":"u","event":"  "}""", "event", "must not be empty")]
    [DataRow("""{"type":"track","userId":"u","event":12}""", "event", "must be a string")]
    [DataRow("""{"type":"track","userId":"u","event":"X","properties":"cheap"}""", "properties", "must be an object")]
    [DataRow("""{"type":"track","userId":"u","event":"X","properties":[1]}""", "properties", "must be an object")]
    [DataRow("""{"type":"identify","userId":"u","traits":["a"]}""", "traits", "must be an object")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"properties":"x"}}""", "traits.properties", "must be an object")]
    [DataRow("""{"type":"track","userId":"u","event":"X","context":5}""", "context", "must be an object")]
    [DataRow("""{"type":"track","userId":"u","event":"X","context":{"traits":"x"}}""", "context.traits", "must be an object")]
    [DataRow("""{"type":"track","userId":"u","event":"X","context":{"location":true}}""", "context.location", "must be an object")]
    [DataRow("""{"type":"track","userId":"u","event":"X","properties":{"revenue":true}}""", "properties.revenue", "must be a number")]
    [DataRow("""{"type":"track","userId":"u","event":"X","properties":{"revenue":"abc"}}""", "properties.revenue", "must be a number")]
    [DataRow("""{"type":"track","userId":"u","event":"X","properties":{"value":{"amount":1}}}""", "properties.value", "must be a number")]
    [DataRow("""{"type":"track","userId":"u","event":"X","properties":{"total":"NaN"}}""", "properties.total", "must be a number")]
    [DataRow("""{"type":"track","userId":"u","event":"X","properties":{"currency":840}}""", "properties.currency", "must be a string")]
    [DataRow("""{"type":"track","userId":{"id":1},"event":"X"}""", "userId", "must be a string or a number")]
    [DataRow("""{"type":"track","anonymousId":true,"event":"X"}""", "anonymousId", "must be a string or a number")]
    [DataRow("""{"type":"track","userId":"u","event":"X","messageId":[1]}""", "messageId", "must be a string or a number")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"email":42}}""", "traits.email", "must be a string")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"phone":true}}""", "traits.phone", "must be a string")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"_kx":1}}""", "traits._kx", "must be a string")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"firstName":{"x":1}}}""", "traits.firstName", "must be a string")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"address":"1 Main St"}}""", "traits.address", "must be an object")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"company":5}}""", "traits.company", "must be an object or a string")]
    [DataRow("""{"type":"identify","userId":"u","context":{"locale":1}}""", "context.locale", "must be a string")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"properties":{"listId":"a/b"}}}""", "traits.properties.listId", "must be a Klaviyo list id (1 to 64 letters and digits)")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"properties":{"subscribe":"yes"}}}""", "traits.properties.subscribe", "must be true or false")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"properties":{"consent":"push"}}}""", "traits.properties.consent", "'push' is not one of email, sms")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"properties":{"consent":["email",1]}}}""", "traits.properties.consent[1]", "must be a string")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"properties":{"consent":{}}}}""", "traits.properties.consent", "must be a string or an array of strings")]
    [DataRow("""{"type":"identify","userId":"u","traits":{"properties":{"smsConsent":1}}}""", "traits.properties.smsConsent", "must be true or false")]
    [DataRow("""{"type":"group","userId":"u","groupId":"L1","traits":{"subscribe":"maybe"}}""", "traits.subscribe", "must be true or false")]
    [DataRow("""{"type":"screen","userId":"u","name":5}""", "name", "must be a string")]
    [DataRow("""{"type":"page","userId":"u","category":["x"]}""", "category", "must be a string")]
    public void Transform_WithWrongField_IsInvalidNamingFieldAndRule(string json, string field, string rule)
    {
        var invalid = Invalid(Transforms.Run(json, o => o.SendPageAsTrack = true));

        Assert.AreEqual(field, invalid.Field);
        Assert.AreEqual(rule, invalid.Rule);
        Assert.AreEqual($"{field}: {rule}", invalid.Message);
    }

    [TestMethod]
    public void Track_WithMetricNameOf127Characters_IsAccepted()
    {
        var name = new string('e', 127);
        var attributes = Attributes(Single(Transforms.Run("""{"type":"track","userId":"u","event":"NAME"}""".Replace("NAME", name, StringComparison.Ordinal)), KlaviyoEndpoint.CreateEvent));

        Assert.AreEqual(name, (string?)attributes["metric"]!["data"]!["attributes"]!["name"]);
    }

    [TestMethod]
    [DataRow("track", "event")]
    [DataRow("screen", "name")]
    public void Event_WithMetricNameOf128Characters_IsInvalid(string type, string field)
    {
        var json = """{"type":"TYPE","userId":"u","FIELD":"NAME"}""".Replace("TYPE", type, StringComparison.Ordinal)
            .Replace("FIELD", field, StringComparison.Ordinal).Replace("NAME", new string('e', 128), StringComparison.Ordinal);
        var invalid = Invalid(Transforms.Run(json));

        Assert.AreEqual(field, invalid.Field);
        Assert.AreEqual("metric name must be shorter than 128 characters", invalid.Rule);
    }

    [TestMethod]
    public void Track_WithStringOver100KB_IsInvalidNamingTheField()
    {
        var json = """{"type":"track","userId":"u","event":"X","properties":{"notes":{"body":"BIG"}}}""".Replace("BIG", new string('x', 100 * 1024 + 1), StringComparison.Ordinal);
        var invalid = Invalid(Transforms.Run(json));

        Assert.AreEqual("properties.notes.body", invalid.Field);
        Assert.Contains("100 KB", invalid.Rule);
    }

    [TestMethod]
    public void Track_WithStringOfExactly100KB_IsAccepted()
    {
        var json = """{"type":"track","userId":"u","event":"X","properties":{"notes":"BIG"}}""".Replace("BIG", new string('x', 100 * 1024), StringComparison.Ordinal);

        Assert.HasCount(1, Requests(Transforms.Run(json)));
    }

    [TestMethod]
    public void Track_WithMoreThan400Properties_IsInvalid()
    {
        var properties = string.Join(",", Enumerable.Range(0, 401).Select(i => $"\"p{i}\":{i}"));
        var invalid = Invalid(Transforms.Run("""{"type":"track","userId":"u","event":"X","properties":{""" + properties + "}}"));

        Assert.AreEqual("properties", invalid.Field);
    }
}
