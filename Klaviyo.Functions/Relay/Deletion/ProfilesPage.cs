using System.Text.Json;

namespace Klaviyo.Functions.Relay;

/// <summary>One page of <c>GET /api/profiles</c> as a deletion needs it: the profile ids and <c>links.next</c>.</summary>
internal sealed record ProfilesPage(IReadOnlyList<string> Ids, string? Next)
{
    /// <summary>The page, or null when the body is not a profiles document (<c>data</c>: an array of objects with a string <c>id</c>).</summary>
    public static ProfilesPage? Parse(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data"u8, out var data) || data.ValueKind != JsonValueKind.Array)
            {
                return null;
            }
            var ids = new List<string>(data.GetArrayLength());
            foreach (var profile in data.EnumerateArray())
            {
                if (profile.ValueKind != JsonValueKind.Object || !profile.TryGetProperty("id"u8, out var id) || id.ValueKind != JsonValueKind.String
                    || id.GetString() is not { Length: > 0 } text)
                {
                    return null;
                }
                ids.Add(text);
            }
            string? next = null;
            if (root.TryGetProperty("links"u8, out var links) && links.ValueKind == JsonValueKind.Object
                && links.TryGetProperty("next"u8, out var nextLink) && nextLink.ValueKind == JsonValueKind.String)
            {
                next = nextLink.GetString();
            }
            return new ProfilesPage(ids, string.IsNullOrEmpty(next) ? null : next);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
