using System.Text.Json;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Bulk;

/// <summary>
/// Several updates of one profile in a batch as one (spec 8.3): attributes merged key by key in the order given (event
/// time, oldest first), the later value winning; <c>properties</c> and <c>location</c> merged key by key too, so an
/// older update never overwrites a newer one and a key only the older one sent is kept. Only these profiles are read
/// again; a profile updated once in a batch goes into its job as the transform wrote it.
/// </summary>
internal static class ProfileMerge
{
    public static ProfilePart Merge(IReadOnlyList<ProfilePart> oldestFirst)
    {
        ArgumentOutOfRangeException.ThrowIfZero(oldestFirst.Count);
        if (oldestFirst.Count == 1)
        {
            return oldestFirst[0];
        }
        var merged = JsonNode.Parse(oldestFirst[0].Data.Span)!.AsObject();
        for (var i = 1; i < oldestFirst.Count; i++)
        {
            var next = JsonNode.Parse(oldestFirst[i].Data.Span)!.AsObject();
            foreach (var (key, value) in next.ToArray())
            {
                if (key == "attributes" && value is JsonObject attributes && merged[key] is JsonObject current)
                {
                    MergeAttributes(current, attributes);
                }
                else
                {
                    merged[key] = value?.DeepClone();
                }
            }
        }
        // The merged object keeps the oldest update's key order, so its identifiers still come first.
        var bytes = JsonSerializer.SerializeToUtf8Bytes(merged, s_options);
        return new ProfilePart(bytes, IdentityLength(bytes, oldestFirst[^1])) { IdentityText = oldestFirst[0].IdentityText };
    }

    private static readonly JsonSerializerOptions s_options = new() { Encoder = BodyBuffers.WriterOptions.Encoder };

    // Should the serializer escape an identifier differently from the transform's writer, the whole object is the
    // identity: still equal only for the same person.
    private static int IdentityLength(byte[] merged, ProfilePart last) =>
        merged.AsSpan().StartsWith(last.IdentityKey.Span) ? last.IdentityLength : merged.Length;

    private static void MergeAttributes(JsonObject into, JsonObject from)
    {
        foreach (var (key, value) in from.ToArray())
        {
            if (key is "properties" or "location" && value is JsonObject inner && into[key] is JsonObject existing)
            {
                foreach (var (innerKey, innerValue) in inner.ToArray())
                {
                    existing[innerKey] = innerValue?.DeepClone();
                }
            }
            else
            {
                into[key] = value?.DeepClone();
            }
        }
    }
}
