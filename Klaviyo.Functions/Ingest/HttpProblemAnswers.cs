using Klaviyo.Functions.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Ingest;

/// <summary>
/// Makes the framework's own error answers problem documents, as the ingest's are (spec section 7): an unknown route
/// (404), a wrong method (405), headers over the relay's limit (431), a body Kestrel cannot read (bad chunking: 400)
/// and any unexpected failure (500, with nothing of the exception in the answer). Errors Kestrel answers before any
/// application code runs (a header block over Kestrel's own limit, a negative Content-Length) cannot carry a body.
/// </summary>
internal static partial class HttpProblemAnswers
{
    /// <summary>The relay's own header limits, below Kestrel's (raised in local mode) so a request over them gets a
    /// problem document instead of Kestrel's empty 431.</summary>
    public const int MaxHeaderBytes = 32 * 1024;

    public const int MaxHeaderCount = 100;

    public static IApplicationBuilder UseProblemAnswers(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (TooManyHeaderBytes(context.Request))
        {
            await WriteAsync(context, 431, "Request header fields too large",
                $"The request's headers are over {MaxHeaderCount} fields or {MaxHeaderBytes} bytes.").ConfigureAwait(false);
            return;
        }
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
        {
            await WriteAsync(context, ex.StatusCode, ReasonPhrases.GetReasonPhrase(ex.StatusCode), LogText.Escape(ex.Message)).ConfigureAwait(false);
            return;
        }
        catch (Exception ex) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            LogUnexpected(context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(HttpProblemAnswers).FullName!),
                ex.GetType().Name, LogText.Escape(context.Request.Path.Value), ex);
            await WriteAsync(context, 500, "Internal error",
                "The request failed unexpectedly; nothing is reported accepted. Send the same request again; events with the same messageId are de-duplicated.").ConfigureAwait(false);
            return;
        }

        var response = context.Response;
        if (!response.HasStarted && response.StatusCode >= 400 && response.ContentLength is null or 0 && response.ContentType is null)
        {
            var (title, detail) = response.StatusCode switch
            {
                404 => ("Not found", "No such route: the ingest takes POST /api/events, /api/v1/batch and /api/v1/{identify|track|page|screen|group|alias|delete}."),
                405 => ("Method not allowed", $"{LogText.Escape(context.Request.Method)} is not allowed here: the ingest routes take POST."),
                _ => (ReasonPhrases.GetReasonPhrase(response.StatusCode), "The request was not handled."),
            };
            await WriteAsync(context, response.StatusCode, title, detail).ConfigureAwait(false);
        }
    });

    public static Task WriteAsync(HttpContext context, int status, string title, string detail) =>
        IngestActionResult.WriteAsync(context, IngestResult.Problem(ValidationProblem.Http(status, title, detail)));

    private static bool TooManyHeaderBytes(HttpRequest request)
    {
        if (request.Headers.Count > MaxHeaderCount)
        {
            return true;
        }
        long total = 0;
        foreach (var (name, values) in request.Headers)
        {
            total += name.Length + 4;
            foreach (var value in values)
            {
                total += value?.Length ?? 0;
            }
        }
        return total > MaxHeaderBytes;
    }

    [LoggerMessage(EventId = 4006, Level = LogLevel.Error, Message = "Unexpected {ExceptionType} answering {Path}; answered 500")]
    private static partial void LogUnexpected(ILogger logger, string exceptionType, string? path, Exception exception);
}
