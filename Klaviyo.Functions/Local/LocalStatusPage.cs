using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Local mode's operator view (spec section 11): <c>GET /</c>, one self-contained HTML page, and <c>GET /api/status</c>,
/// the JSON it refreshes from. Both follow <see cref="LocalKeys.AllowsStatus"/>. The page's Content-Security-Policy
/// allows nothing from elsewhere (no script, style, font or image from another origin; only its own inline script, by
/// hash, and requests to this relay), so it works on a machine without internet and event text shown on it cannot run.
/// </summary>
internal static class LocalStatusPage
{
    public const string ResourceName = "Klaviyo.Functions.Local.LocalStatusPage.html";

    private static readonly Lazy<(byte[] Html, string Policy)> s_page = new(Load);

    /// <summary>The page's HTML as served.</summary>
    public static string Html => Encoding.UTF8.GetString(s_page.Value.Html);

    /// <summary>The Content-Security-Policy sent with the page.</summary>
    public static string Policy => s_page.Value.Policy;

    public static void MapLocalStatus(this WebApplication app, LocalKeys keys)
    {
        app.MapGet("/", async context =>
        {
            if (!keys.AllowsStatus(context.Request))
            {
                await LocalKeys.WriteUnauthorizedAsync(context).ConfigureAwait(false);
                return;
            }
            var (html, policy) = s_page.Value;
            context.Response.ContentType = "text/html; charset=utf-8";
            context.Response.Headers.ContentSecurityPolicy = policy;
            context.Response.Headers.CacheControl = "no-store";
            context.Response.Headers["X-Content-Type-Options"] = "nosniff";
            context.Response.Headers["Referrer-Policy"] = "no-referrer";
            await context.Response.Body.WriteAsync(html, context.RequestAborted).ConfigureAwait(false);
        });
        app.MapGet("/api/status", async context =>
        {
            if (!keys.AllowsStatus(context.Request))
            {
                await LocalKeys.WriteUnauthorizedAsync(context).ConfigureAwait(false);
                return;
            }
            var status = context.RequestServices.GetRequiredService<LocalStatus>();
            context.Response.Headers.CacheControl = "no-store";
            await context.Response.WriteAsJsonAsync(status.Report(replay: keys.Admin is not null), context.RequestAborted).ConfigureAwait(false);
        });
    }

    private static (byte[] Html, string Policy) Load()
    {
        using var stream = typeof(LocalStatusPage).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The status page resource {ResourceName} is missing from the build.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var html = reader.ReadToEnd();
        const string open = "<script>", close = "</script>";
        var start = html.IndexOf(open, StringComparison.Ordinal) + open.Length;
        var end = html.IndexOf(close, start, StringComparison.Ordinal);
        var hash = Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(html[start..end])));
        var policy = $"default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        return (Encoding.UTF8.GetBytes(html), policy);
    }
}
