using System.Net;
using System.Text;
using Klaviyo.Functions.Klaviyo;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

/// <summary>
/// <c>Klaviyo:DryRun</c> in local mode (the innermost handler, read from the bound options): prints each Klaviyo call (method, path, body; never headers, so never the key)
/// and answers as Klaviyo would on success, with a made-up profile id for profile-import.
/// </summary>
internal sealed class DryRunKlaviyoHandler(IOptions<KlaviyoOptions> options, TextWriter output) : DelegatingHandler
{
    public const string ProfileId = "01DRYRUNPROFILE00000000000";

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!options.Value.DryRun)
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        var body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        var path = request.RequestUri?.AbsolutePath ?? "";
        lock (output)
        {
            output.WriteLine($"[dry run] {request.Method} {path} {body}");
        }
        if (path.EndsWith("/api/profile-import", StringComparison.Ordinal))
        {
            return new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StringContent("{\"data\":{\"type\":\"profile\",\"id\":\"" + ProfileId + "\"}}", Encoding.UTF8, "application/vnd.api+json"),
            };
        }
        return new HttpResponseMessage(path.Contains("/relationships/", StringComparison.Ordinal) ? HttpStatusCode.NoContent : HttpStatusCode.Accepted);
    }
}
