using Microsoft.Net.Http.Headers;

namespace Klaviyo.Functions.Ingest;

/// <summary>Which request content types are read as JSON (spec section 7).</summary>
internal static class ContentTypes
{
    /// <summary>
    /// <c>application/json</c>, any <c>application/*+json</c>, <c>text/plain</c> (what <c>navigator.sendBeacon</c>
    /// sends) and a missing header are JSON, whatever the charset parameter says: JSON is UTF-8 on the wire.
    /// </summary>
    public static bool IsJson(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType))
        {
            return true;
        }
        if (!MediaTypeHeaderValue.TryParse(contentType, out var parsed))
        {
            return false;
        }
        var type = parsed.Type;
        var subType = parsed.SubType;
        if (type.Equals("application", StringComparison.OrdinalIgnoreCase))
        {
            return subType.Equals("json", StringComparison.OrdinalIgnoreCase)
                || (subType.Length > "+json".Length && subType.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
        }
        return type.Equals("text", StringComparison.OrdinalIgnoreCase) && subType.Equals("plain", StringComparison.OrdinalIgnoreCase);
    }
}
