using System.Buffers;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Transform;

/// <summary>
/// Random input through the transform. Every input must end in a result (planned, skipped, invalid, malformed) whose
/// request bodies are JSON; an exception is a bug (the ingest would answer 500, the relay dead-letter ProcessingFailed),
/// so no input may produce one.
/// </summary>
[TestClass]
public sealed class TransformFuzzTests
{
    private static readonly Action<KlaviyoOptions>[] Settings =
    [
        _ => { },
        o => { o.SendPageAsTrack = true; o.AdditionalPageInfo = true; o.FlattenProperties = true; },
        o => { o.EnforceEmailAsPrimary = true; o.ListId = "LIST1"; o.Consent = "email,sms"; o.SmsConsent = true; },
    ];

    [TestMethod]
    public void Transform_WithRandomFragments_NeverFailsWithABug()
    {
        string[] fragments = ["{", "}", "[", "]", "\"type\":\"track\"", "\"type\":\"identify\"", "\"traits\":", "\"properties\":", "null", "1", "\"x\"", ",", ":", "\"items\":", "\"event\":"];
        var random = new Random(1234);
        var transformer = Transforms.Transformer(Settings[1]);
        for (var i = 0; i < 2000; i++)
        {
            var body = new StringBuilder();
            for (var j = random.Next(1, 20); j > 0; j--)
            {
                body.Append(fragments[random.Next(fragments.Length)]);
            }
            AssertResult(transformer, Encoding.UTF8.GetBytes(body.ToString()));
        }
    }

    [TestMethod]
    public void Transform_WithRandomEventsOfEveryType_NeverFailsWithABug()
    {
        var random = new Random(20261130);
        var transformers = Array.ConvertAll(Settings, s => Transforms.Transformer(s));
        var kinds = new Dictionary<string, int>();
        for (var i = 0; i < 3000; i++)
        {
            var body = RandomEvent(random);
            foreach (var transformer in transformers)
            {
                var kind = AssertResult(transformer, body);
                kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
            }
        }
        // The generator reaches the mappings, not only the shape checks: each kind of result is common.
        foreach (var kind in new[] { nameof(TransformResult.Planned), nameof(TransformResult.Skipped), nameof(TransformResult.Invalid) })
        {
            Assert.IsGreaterThan(300, kinds.GetValueOrDefault(kind), $"{kind}: {string.Join(", ", kinds)}");
        }
    }

    [TestMethod]
    public void Check_WithRandomEvents_DecidesAsTheFullTransform()
    {
        var random = new Random(424242);
        var transformers = Array.ConvertAll(Settings, s => Transforms.Transformer(s));
        for (var i = 0; i < 3000; i++)
        {
            var body = RandomEvent(random);
            using var document = JsonDocument.Parse(body);
            foreach (var transformer in transformers)
            {
                var full = transformer.Transform(document.RootElement);
                var check = transformer.Check(document.RootElement);
                var input = Encoding.UTF8.GetString(body);
                switch (full)
                {
                    case TransformResult.Planned:
                        Assert.AreSame(TransformResult.Planned.Checked, check, input);
                        break;
                    default:
                        Assert.AreEqual(full, check, input);
                        break;
                }
            }
        }
    }

    /// <summary>Transforms, fails the test with the input on an exception, and checks that planned bodies are JSON.</summary>
    private static string AssertResult(KlaviyoTransformer transformer, byte[] body)
    {
        TransformResult? result = null;
        Exception? bug = null;
        try
        {
            result = transformer.Transform(body);
        }
        catch (Exception ex)
        {
            bug = ex;
        }
        Assert.IsNull(bug, $"The transform failed with a bug ({bug?.GetType().Name}: {bug?.Message}) on: {Encoding.UTF8.GetString(body)}");
        Assert.IsNotNull(result);
        if (result is TransformResult.Planned planned)
        {
            foreach (var step in planned.Plan.Steps)
            {
                using var document = JsonDocument.Parse(step.Build("01FUZZPROFILE").Body);
                Assert.AreEqual(JsonValueKind.Object, document.RootElement.ValueKind);
            }
        }
        return result.GetType().Name;
    }

    private static readonly string[] Types = ["identify", "track", "page", "screen", "group", "alias", "TRACK", "Identify", "purchase"];

    private static readonly string[] Keys =
    [
        "userId", "anonymousId", "messageId", "event", "name", "category", "groupId", "timestamp", "originalTimestamp",
        "receivedAt", "traits", "context", "properties", "email", "phone", "firstName", "first_name", "lastName", "company",
        "organization", "title", "image", "avatar", "address", "street", "city", "state", "zip", "postalCode", "timezone",
        "locale", "ip", "location", "latitude", "longitude", "externalId", "_kx", "listId", "subscribe", "consent",
        "smsConsent", "revenue", "value", "total", "currency", "order_id", "items", "products", "product_id", "sku",
        "price", "quantity", "row_total", "url", "image_url", "categories", "item_names", "checkout_url", "Items",
        "ProductName", "type", "id", "_id", "nested",
    ];

    private static readonly string[] Strings =
    [
        "", " ", "u1", "Product Viewed", " product added ", "Checkout Started", "product clicked", "Order Completed",
        "+1 555 0100", "0044 20 7946 0958", "555", "a@example.com", "2026-11-28T12:00:00Z", "1980-01-01", "3026-01-01",
        "abc", "12.5", "NaN", "true", "FALSE", "email", "sms", "push", "email,sms", "L1", "a/b", "klaviyo-profileId",
        "caf\u00e9", "\ud83d\ude00", "cut " + LoneSurrogate, LoneSurrogate + " low", "tab\there", "quote\"d", "back\\slash",
    ];

    // Utf8JsonWriter will not write a lone surrogate; this marker is swapped for the raw escape afterwards.
    private const string LoneSurrogate = "@LONE@";

    private static byte[] RandomEvent(Random random)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", Types[random.Next(Types.Length)]);
            if (random.Next(4) > 0)
            {
                writer.WriteString("userId", "user-" + random.Next(100));
            }
            for (var n = random.Next(0, 8); n > 0; n--)
            {
                writer.WritePropertyName(Keys[random.Next(Keys.Length)]);
                WriteValue(writer, random, depth: 0);
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(buffer.WrittenSpan).Replace(LoneSurrogate, random.Next(2) == 0 ? "\\ud83d" : "\\udc00", StringComparison.Ordinal));
    }

    private static void WriteValue(Utf8JsonWriter writer, Random random, int depth)
    {
        switch (random.Next(depth < 3 ? 9 : 6))
        {
            case 0 or 1 or 2:
                writer.WriteStringValue(Strings[random.Next(Strings.Length)]);
                break;
            case 3:
                writer.WriteNumberValue(random.Next(3) switch { 0 => 0, 1 => -1.5, _ => 1e300 });
                break;
            case 4:
                if (random.Next(2) == 0)
                {
                    writer.WriteBooleanValue(random.Next(2) == 0);
                }
                else
                {
                    writer.WriteNullValue();
                }
                break;
            case 5:
                writer.WriteNumberValue(random.Next(1000));
                break;
            case 6 or 7:
                writer.WriteStartObject();
                for (var n = random.Next(0, 6); n > 0; n--)
                {
                    writer.WritePropertyName(Keys[random.Next(Keys.Length)]);
                    WriteValue(writer, random, depth + 1);
                }
                writer.WriteEndObject();
                break;
            default:
                writer.WriteStartArray();
                for (var n = random.Next(0, 4); n > 0; n--)
                {
                    WriteValue(writer, random, depth + 1);
                }
                writer.WriteEndArray();
                break;
        }
    }
}
