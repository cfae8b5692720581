using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Transform;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>What a client of the ingest would see: status, headers and the JSON body.</summary>
internal sealed record IngestResponse(int Status, string? ContentType, IHeaderDictionary Headers, JsonElement Body)
{
    public IReadOnlyList<JsonElement> Errors => [.. Body.GetProperty("errors").EnumerateArray()];
}

/// <summary>
/// The ingest function wired as the app wires it, with a <see cref="RecordingEventQueue"/>, a fixed clock and the real
/// transformer. Requests go through <see cref="IngestFunction"/> on a <see cref="DefaultHttpContext"/>, and the answer
/// is executed against the response, as ASP.NET Core would.
/// </summary>
internal sealed class IngestHost
{
    public static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 30, 15, 123, TimeSpan.Zero);

    /// <param name="transformClock">The transform's clock when it must differ from <see cref="Time"/> (a broken one stands in for a bug).</param>
    public IngestHost(IngestOptions? ingest = null, KlaviyoOptions? klaviyo = null, TimeProvider? transformClock = null)
    {
        Options = ingest ?? new IngestOptions();
        KlaviyoSettings = klaviyo ?? new KlaviyoOptions { PrivateApiKey = "pk_test_0123456789" };
        var options = Microsoft.Extensions.Options.Options.Create(Options);
        var transformer = new KlaviyoTransformer(KlaviyoSettings, transformClock ?? Time);
        Handler = new IngestHandler(
            new EventValidator(transformer, options),
            new SignatureVerifier(options),
            Queue,
            Admission = new IngestAdmission(options),
            new IngestMetrics(MeterFactory),
            options,
            Time,
            NullLogger<IngestHandler>.Instance);
        Function = new IngestFunction(Handler);
    }

    public IngestOptions Options { get; }

    /// <summary>The meters of this host's handler (read them with a MetricCollector).</summary>
    public IMeterFactory MeterFactory { get; } = new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>();

    public IngestAdmission Admission { get; }

    public KlaviyoOptions KlaviyoSettings { get; }

    public FakeTimeProvider Time { get; } = new(Now);

    public RecordingEventQueue Queue { get; } = new();

    public IngestHandler Handler { get; }

    public IngestFunction Function { get; }

    public Task<IngestResponse> PostAsync(string path, string body, string? contentType = "application/json", string? signature = null, bool sendContentLength = true) =>
        PostAsync(path, Encoding.UTF8.GetBytes(body), contentType, signature, sendContentLength);

    public Task<IngestResponse> PostAsync(string path, byte[] body, string? contentType = "application/json", string? signature = null, bool sendContentLength = true) =>
        PostAsync(path, new MemoryStream(body), sendContentLength ? body.Length : null, contentType, signature);

    public async Task<IngestResponse> PostAsync(string path, Stream body, long? contentLength, string? contentType = "application/json", string? signature = null)
    {
        var context = new DefaultHttpContext();
        var request = context.Request;
        request.Method = HttpMethods.Post;
        request.Path = path;
        request.Body = body;
        request.ContentLength = contentLength;
        if (contentType is not null)
        {
            request.ContentType = contentType;
        }
        if (signature is not null)
        {
            request.Headers[SignatureVerifier.HeaderName] = signature;
        }
        var response = new MemoryStream();
        context.Response.Body = response;

        IActionResult result;
        if (path == "/api/events")
        {
            result = await Function.Events(request);
        }
        else if (path == "/api/v1/batch")
        {
            result = await Function.Batch(request);
        }
        else if (path.StartsWith("/api/v1/", StringComparison.Ordinal))
        {
            var type = path["/api/v1/".Length..];
            request.RouteValues["type"] = type;
            result = await Function.Typed(request, (string)request.RouteValues["type"]!);
        }
        else
        {
            throw new ArgumentException($"no ingest route {path}", nameof(path));
        }

        await result.ExecuteResultAsync(new ActionContext(context, new RouteData(), new ActionDescriptor()));
        response.Position = 0;
        using var document = await JsonDocument.ParseAsync(response);
        return new IngestResponse(context.Response.StatusCode, context.Response.ContentType, context.Response.Headers, document.RootElement.Clone());
    }

    /// <summary>The queued body of one sent event, parsed.</summary>
    public static JsonElement BodyOf(QueuedEvent queued)
    {
        using var document = JsonDocument.Parse(queued.Body);
        return document.RootElement.Clone();
    }
}
