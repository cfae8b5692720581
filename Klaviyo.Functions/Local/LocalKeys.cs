using System.Net;
using System.Security.Cryptography;
using System.Text;
using Klaviyo.Functions.Ingest;
using Microsoft.AspNetCore.Http;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Local mode's function keys (spec section 9), sent as <c>x-functions-key</c> or <c>?code=</c> like Azure's. The
/// ingest needs <c>Local:ApiKey</c> when it is set, and listening beyond loopback without it (or a signing secret)
/// refuses to start; replay needs <c>Local:AdminKey</c>. Compared in constant time; never logged.
/// </summary>
internal sealed class LocalKeys
{
    public const string HeaderName = "x-functions-key";
    public const string QueryName = "code";

    private readonly byte[]? _api;
    private readonly byte[]? _admin;
    private readonly bool _loopbackOnly;

    private LocalKeys(string? api, string? admin, bool loopbackOnly)
    {
        _loopbackOnly = loopbackOnly;
        _api = api is null ? null : Digest(api);
        _admin = admin is null ? null : Digest(admin);
        Admin = string.IsNullOrEmpty(admin) ? null : "set";
    }

    /// <summary>Non-null when an admin key is configured (the replay route exists).</summary>
    public string? Admin { get; }

    /// <summary>The keys for these settings; throws <see cref="LocalStartupException"/> when <paramref name="urls"/>
    /// reach beyond loopback and neither <c>Local:ApiKey</c> nor <c>Ingest:SigningSecret</c> guards the ingest.</summary>
    public static LocalKeys For(LocalOptions local, IngestOptions ingest, string urls)
    {
        var apiKey = string.IsNullOrEmpty(local.ApiKey) ? null : local.ApiKey.Trim();
        var open = urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(url => !IsLoopback(url)).ToList();
        if (open.Count > 0 && apiKey is null && !ingest.RequiresSignature)
        {
            throw new LocalStartupException(
                $"Local__ApiKey is required when local mode listens beyond loopback ({string.Join(", ", open)}): set Local__ApiKey "
                + "(sent as x-functions-key or ?code=) or Ingest__SigningSecret, or listen on http://localhost only.");
        }
        return new LocalKeys(apiKey, string.IsNullOrEmpty(local.AdminKey) ? null : local.AdminKey.Trim(), open.Count == 0);
    }

    public bool AllowsIngest(HttpRequest request) => _api is null || Matches(request, _api);

    public bool AllowsAdmin(HttpRequest request) => _admin is not null && Matches(request, _admin);

    /// <summary>The status page and <c>/api/status</c> (they show dead letters): like the ingest, open on loopback without
    /// <c>Local:ApiKey</c> and needing it when set; the admin key opens them too. Beyond loopback without
    /// <c>Local:ApiKey</c> (a signing secret guards the ingest but signs no GET) only the admin key does.</summary>
    public bool AllowsStatus(HttpRequest request) =>
        (_admin is not null && Matches(request, _admin)) || (_api is null ? _loopbackOnly : Matches(request, _api));

    public static Task WriteUnauthorizedAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.ContentType = "application/problem+json";
        return context.Response.WriteAsync(
            """{"type":"https://www.rfc-editor.org/rfc/rfc9110#section-15.5.2","title":"Missing or wrong function key","status":401,"detail":"Send the key as the x-functions-key header or the code query parameter."}""");
    }

    /// <summary>A loopback address: <c>localhost</c>, 127.0.0.0/8 or ::1. <c>*</c>, <c>+</c>, 0.0.0.0 and names are not.</summary>
    public static bool IsLoopback(string url)
    {
        if (!Uri.TryCreate(url.Replace("://*", "://wildcard.invalid", StringComparison.Ordinal).Replace("://+", "://wildcard.invalid", StringComparison.Ordinal), UriKind.Absolute, out var uri))
        {
            return false;
        }
        return string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase)
               || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
    }

    private static bool Matches(HttpRequest request, byte[] expected)
    {
        var sent = request.Headers[HeaderName].FirstOrDefault() ?? request.Query[QueryName].FirstOrDefault();
        return sent is not null && CryptographicOperations.FixedTimeEquals(Digest(sent), expected);
    }

    // Hashing first makes the comparison independent of the key's length as well.
    private static byte[] Digest(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
}
