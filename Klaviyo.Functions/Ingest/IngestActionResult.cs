using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace Klaviyo.Functions.Ingest;

/// <summary>Writes an <see cref="IngestResult"/> to the response as it is: no formatters, no content negotiation.</summary>
internal sealed class IngestActionResult(IngestResult result) : IActionResult
{
    public IngestResult Result { get; } = result;

    public Task ExecuteResultAsync(ActionContext context) => WriteAsync(context.HttpContext, Result);

    /// <summary>Shared with local mode, which serves the same answers without the Functions host.</summary>
    public static async Task WriteAsync(HttpContext httpContext, IngestResult result)
    {
        var response = httpContext.Response;
        response.StatusCode = result.Status;
        response.ContentType = result.ContentType;
        response.ContentLength = result.Body.Length;
        if (result.RetryAfter is { } retryAfter)
        {
            response.Headers.RetryAfter = ((long)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }
        await response.Body.WriteAsync(result.Body, httpContext.RequestAborted);
    }
}
