namespace Klaviyo.Functions.Klaviyo;

/// <summary>Following a paged answer's <c>links.next</c>: only to Klaviyo itself (<c>Klaviyo__BaseUrl</c>) and only to
/// the path being paged, so an answer can never send the relay's key elsewhere or wander to another resource.</summary>
internal static class NextLinks
{
    /// <summary>The relative path (query kept) of <paramref name="next"/> when it stays on <paramref name="baseUrl"/>'s scheme,
    /// host and port and on <paramref name="pagedPath"/>; false, with why, for anything else.</summary>
    public static bool TryFollow(string next, string baseUrl, string pagedPath, out string path, out string refused)
    {
        path = "";
        var baseUri = new Uri(baseUrl.TrimEnd('/') + "/");
        if (!Uri.TryCreate(next, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
        {
            refused = "is not an absolute http(s) URL";
            return false;
        }
        if (uri.Scheme != baseUri.Scheme || !string.Equals(uri.Host, baseUri.Host, StringComparison.OrdinalIgnoreCase)
            || uri.Port != baseUri.Port || uri.UserInfo.Length > 0)
        {
            refused = $"points at another host ({uri.Scheme}://{Cut(uri.Authority)}) than Klaviyo__BaseUrl ({baseUri.Scheme}://{baseUri.Authority})";
            return false;
        }
        if (!string.Equals(uri.AbsolutePath, baseUri.AbsolutePath.TrimEnd('/') + pagedPath, StringComparison.Ordinal))
        {
            refused = $"points at another path than {pagedPath} ({Cut(uri.AbsolutePath)})";
            return false;
        }
        path = pagedPath + uri.Query;
        refused = "";
        return true;
    }

    private static string Cut(string text) => text.Length <= 100 ? text : string.Concat(text.AsSpan(0, 100), "…");
}
