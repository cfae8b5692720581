using System.Net;
using System.Text;
using Klaviyo.Functions.Klaviyo;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

/// <summary>
/// <c>Klaviyo:DryRun</c> in local mode (the innermost handler, read from the bound options): prints each Klaviyo call (method, path, body; never headers, so never the key)
/// and answers as Klaviyo would on success: a made-up profile id for profile-import, a made-up import job that is
/// complete at once with no import errors, and one made-up profile for a deletion's lookup by external_id, so dry-run
/// batches settle like real ones. A GET is printed with its query (a lookup's filter); a deletion job's email or phone
/// as its hash.
/// </summary>
internal sealed class DryRunKlaviyoHandler(IOptions<KlaviyoOptions> options, TextWriter output) : DelegatingHandler
{
    public const string ProfileId = "01DRYRUNPROFILE00000000000";

    public const string ImportJobId = "DRYRUNIMPORTJOB";

    private const string ImportJobs = "/api/profile-bulk-import-jobs";

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!options.Value.DryRun)
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        var body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        var path = request.RequestUri?.AbsolutePath ?? "";
        if (path.EndsWith(KlaviyoApi.RequestDeletionPath, StringComparison.Ordinal))
        {
            body = WithoutIdentifiers(body);
        }
        lock (output)
        {
            output.WriteLine($"[dry run] {request.Method} {(request.Method == HttpMethod.Get ? Uri.UnescapeDataString(request.RequestUri?.PathAndQuery ?? path) : path)} {body}");
        }
        if (path.EndsWith("/api/profile-import", StringComparison.Ordinal))
        {
            return Json(HttpStatusCode.OK, "{\"data\":{\"type\":\"profile\",\"id\":\"" + ProfileId + "\"}}");
        }
        if (path.EndsWith(ImportJobs, StringComparison.Ordinal) || path.EndsWith($"{ImportJobs}/{ImportJobId}", StringComparison.Ordinal))
        {
            return Json(request.Method == HttpMethod.Get ? HttpStatusCode.OK : HttpStatusCode.Accepted,
                "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"" + ImportJobId + "\",\"attributes\":{\"status\":\"" + (request.Method == HttpMethod.Get ? "complete" : "queued") + "\",\"failed_count\":0}}}");
        }
        if (request.Method == HttpMethod.Get && path.EndsWith(KlaviyoApi.ProfilesPath, StringComparison.Ordinal))
        {
            return Json(HttpStatusCode.OK, "{\"data\":[{\"type\":\"profile\",\"id\":\"" + ProfileId + "\"}],\"links\":{}}");
        }
        if (path.EndsWith($"{ImportJobs}/{ImportJobId}/import-errors", StringComparison.Ordinal))
        {
            return Json(HttpStatusCode.OK, "{\"data\":[],\"links\":{}}");
        }
        return new HttpResponseMessage(path.Contains("/relationships/", StringComparison.Ordinal) ? HttpStatusCode.NoContent : HttpStatusCode.Accepted);
    }

    /// <summary>A deletion's email or phone is printed as its hash, as in the relay's logs (spec 5.7).</summary>
    private static string WithoutIdentifiers(string body)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(body);
        if (json?["data"]?["attributes"]?["profile"]?["data"]?["attributes"] is System.Text.Json.Nodes.JsonObject attributes)
        {
            foreach (var (name, kind) in new[] { ("email", "email"), ("phone_number", "phone") })
            {
                if (attributes[name]?.GetValue<string>() is { } value)
                {
                    attributes[name] = $"[{kind} {Relay.DeletionProcessor.Hash(value)}]";
                }
            }
        }
        return json?.ToJsonString() ?? body;
    }

    private static HttpResponseMessage Json(HttpStatusCode status, string body) => new(status)
    {
        Content = new StringContent(body, Encoding.UTF8, "application/vnd.api+json"),
    };
}
