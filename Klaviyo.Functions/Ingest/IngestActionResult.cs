using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace Klaviyo.Functions.Ingest;

/// <summary>Writes an <see cref="IngestResult"/> to the response as it is: no formatters, no content negotiation.</summary>
public sealed class IngestActionResult(IngestResult result) : IActionResult
{
    public IngestResult Result { get; } = result;

    public async Task ExecuteResultAsync(ActionContext context)
    {
        var response = context.HttpContext.Response;
        response.StatusCode = Result.Status;
        response.ContentType = Result.ContentType;
        response.ContentLength = Result.Body.Length;
        if (Result.RetryAfter is { } retryAfter)
        {
            response.Headers.RetryAfter = ((long)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }
        await response.Body.WriteAsync(Result.Body, context.HttpContext.RequestAborted);
    }
}
