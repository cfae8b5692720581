using System.Buffers;
using System.Text.Json;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Bulk;

/// <summary>Small JSON helpers of the bulk paths: a fresh writer for the job ticket, reading strings and a profile's identifiers.</summary>
internal static class BulkJson
{
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

    public static string? String(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

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
