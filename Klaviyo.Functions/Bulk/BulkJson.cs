using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Bulk;

/// <summary>Small JSON helpers of the bulk builders: raw copies of parts of the single-call bodies.</summary>
internal static class BulkJson
{
    private static readonly JsonSerializerOptions s_nodeOptions = new() { Encoder = BodyBuffers.WriterOptions.Encoder };

    /// <summary>Writes a JSON document with a fresh writer (bulk bodies are large and rare; no pooling needed).</summary>
    public static byte[] Write(Action<Utf8JsonWriter> write, int sizeHint = 16 * 1024)
    {
        var buffer = new ArrayBufferWriter<byte>(Math.Max(256, sizeHint));
        using (var writer = new Utf8JsonWriter(buffer, BodyBuffers.WriterOptions))
        {
            write(writer);
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The raw bytes of an element (a copy, independent of its document).</summary>
    public static byte[] Raw(JsonElement element) => System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(element).ToArray();

    /// <summary>An object's properties except <paramref name="skip"/>, as a new object.</summary>
    public static byte[] Without(JsonElement obj, string skip)
    {
        void WriteWithout(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            foreach (var property in obj.EnumerateObject())
            {
                if (!property.NameEquals(skip))
                {
                    property.WriteTo(w);
                }
            }
            w.WriteEndObject();
        }
        return Write(WriteWithout, System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(obj).Length);
    }

    public static string? String(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    public static string Serialize(JsonNode node) => node.ToJsonString(s_nodeOptions);

    public static byte[] SerializeToUtf8(JsonNode node) => JsonSerializer.SerializeToUtf8Bytes(node, s_nodeOptions);

    /// <summary>
    /// The profile's identifiers as one key (spec 8.2: "same identifiers"): Klaviyo's id, email, phone_number,
    /// external_id, anonymous_id and _kx of a profile resource object.
    /// </summary>
    public static string IdentityKey(JsonElement profileData)
    {
        var attributes = profileData.ValueKind == JsonValueKind.Object && profileData.TryGetProperty("attributes", out var a) ? a : default;
        return string.Join('\u001f',
            String(profileData, "id"), String(attributes, "email"), String(attributes, "phone_number"),
            String(attributes, "external_id"), String(attributes, "anonymous_id"), Kx(attributes));
    }

    private static string? Kx(JsonElement attributes) =>
        attributes.ValueKind == JsonValueKind.Object && attributes.TryGetProperty("_kx", out var kx) ? kx.GetRawText() : null;
}
