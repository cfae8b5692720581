using Klaviyo.Functions.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Ingest;

/// <summary>
/// Azure (ASP.NET Core integration): a failure of an HTTP function, or a body the worker cannot read, is answered as a
/// problem document (500, or the framework's 4xx) instead of the host's empty 500. Routing errors (404, 405) and
/// header limits are the Functions host's, before the worker sees the request.
/// </summary>
internal sealed partial class HttpProblemWorkerMiddleware(ILogger<HttpProblemWorkerMiddleware> logger) : IFunctionsWorkerMiddleware
{
    public async Task Invoke(FunctionContext context, FunctionExecutionDelegate next)
    {
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (Exception ex) when (context.GetHttpContext() is { Response.HasStarted: false } http && !http.RequestAborted.IsCancellationRequested)
        {
            if (ex is BadHttpRequestException bad)
            {
                await HttpProblemAnswers.WriteAsync(http, bad.StatusCode, Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(bad.StatusCode), LogText.Escape(bad.Message)).ConfigureAwait(false);
                return;
            }
            LogUnexpected(logger, ex.GetType().Name, LogText.Escape(http.Request.Path.Value), ex);
            await HttpProblemAnswers.WriteAsync(http, 500, "Internal error",
                "The request failed unexpectedly; nothing is reported accepted. Send the same request again; events with the same messageId are de-duplicated.").ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 4007, Level = LogLevel.Error, Message = "Unexpected {ExceptionType} answering {Path}; answered 500")]
    private static partial void LogUnexpected(ILogger logger, string exceptionType, string path, Exception exception);
}
