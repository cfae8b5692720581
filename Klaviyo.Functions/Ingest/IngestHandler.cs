using System.Net.Sockets;
using Azure;
using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Events;
using Klaviyo.Functions.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Ingest;

/// <summary>One ingest request, free of ASP.NET Core types.</summary>
/// <param name="RouteType">The type segment of <c>/api/v1/{type}</c>; null on <c>/api/events</c> and <c>/api/v1/batch</c>.</param>
internal sealed record IngestRequest(Stream Body, string? ContentType, long? ContentLength, string? Signature, string? RouteType = null);

/// <summary>
/// Decides one ingest request (spec section 7): size cap, signature, content type, all-or-nothing validation, then one
/// queue message per event. 202 is answered only after the queue acknowledged every message.
/// </summary>
internal sealed partial class IngestHandler(
    EventValidator validator,
    SignatureVerifier signatures,
    IEventQueue queue,
    IngestAdmission admission,
    IngestMetrics metrics,
    IOptions<IngestOptions> options,
    TimeProvider timeProvider,
    ILogger<IngestHandler> logger)
{
    public async Task<IngestResult> HandleAsync(IngestRequest request, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        EventType? routeType = null;
        if (request.RouteType is not null)
        {
            if (!EventTypes.TryParse(request.RouteType, out var parsed))
            {
                return IngestResult.Problem(ValidationProblem.UnknownRoute(request.RouteType));
            }
            routeType = parsed;
        }

        if (admission.IsStopping)
        {
            metrics.Busy("stopping");
            LogRefused(logger, 503, 0);
            return IngestResult.Problem(ValidationProblem.Stopping(), settings.RetryAfter);
        }

        if (settings.SigningSecretUnresolved)
        {
            LogRefused(logger, 503, 0);
            return IngestResult.Problem(ValidationProblem.SigningSecretUnresolved(), settings.RetryAfter);
        }

        if (request.ContentLength > settings.MaxRequestBytes)
        {
            LogRefused(logger, 413, 0);
            return IngestResult.Problem(ValidationProblem.RequestTooLarge(settings.MaxRequestBytes));
        }

        BodyReadStatus readStatus;
        RequestBody? read;
        try
        {
            (readStatus, read) = await RequestBody.ReadAsync(request.Body, settings.MaxRequestBytes, admission, cancellationToken);
        }
        catch (IOException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Bad chunking and the like (Kestrel's BadHttpRequestException is an IOException; a chunk size that
            // overflows is a bare IOException): the sender's framing is wrong, not the relay.
            var status = ex is Microsoft.AspNetCore.Http.BadHttpRequestException bad ? bad.StatusCode : 400;
            LogRefused(logger, status, 0);
            return IngestResult.Problem(ValidationProblem.UnreadableBody(status, LogText.Escape(ex.Message)));
        }
        using var body = read;
        if (readStatus == BodyReadStatus.TooSlow)
        {
            metrics.Busy("slow-body-evicted");
            LogEvicted(logger, settings.MinBodyBytesPerSecond);
            return IngestResult.Problem(ValidationProblem.BodyTooSlow(settings.MinBodyBytesPerSecond));
        }
        if (readStatus == BodyReadStatus.OverBudget)
        {
            metrics.Busy("body-memory");
            LogBusy(logger, settings.MaxInFlightBodyBytes);
            return IngestResult.Problem(ValidationProblem.Overloaded(), settings.RetryAfter);
        }
        if (body is null)
        {
            LogRefused(logger, 413, 0);
            return IngestResult.Problem(ValidationProblem.RequestTooLarge(settings.MaxRequestBytes));
        }

        // Authenticate before looking at what was sent: an unsigned caller learns nothing about the content rules.
        if (!signatures.Verify(body.Memory.Span, request.Signature))
        {
            LogRefused(logger, 401, 0);
            return IngestResult.Problem(ValidationProblem.BadSignature(missing: string.IsNullOrWhiteSpace(request.Signature), signatures.ExpectedForm));
        }

        if (!ContentTypes.IsJson(request.ContentType))
        {
            LogRefused(logger, 415, 0);
            return IngestResult.Problem(ValidationProblem.UnsupportedMediaType(request.ContentType));
        }

        // The text scan comes first: it makes lone surrogates readable, and the validator must not see bytes that are
        // not UTF-8 (they would be silently replaced) or numbers a double cannot hold.
        var text = RequestTextScanner.Scan(body.WritableSpan, settings.MaxEventsPerRequest);
        if (text.TooManyEvents)
        {
            LogRefused(logger, 413, 0);
            return IngestResult.Problem(ValidationProblem.TooManyEvents(settings.MaxEventsPerRequest));
        }
        if (text.Problems.Count > 0)
        {
            LogRefused(logger, 400, text.Problems.Count);
            return IngestResult.Problem(ValidationProblem.InvalidEvents(text.Problems));
        }
        if (text.LoneSurrogatesReplaced > 0)
        {
            metrics.LoneSurrogatesReplaced(text.LoneSurrogatesReplaced);
            LogLoneSurrogates(logger, text.LoneSurrogatesReplaced);
        }

        // The parse is held in the same budget as the bodies: many dense bodies checked at once wait their turn (503)
        // instead of together lifting memory by hundreds of megabytes.
        var parseCost = IngestOptions.ParseCost(text);
        if (!admission.TryReserve(parseCost, heldByCaller: body.Reserved) && !await admission.ReserveAsync(parseCost, self: null, cancellationToken))
        {
            metrics.Busy("parse-memory");
            LogBusy(logger, settings.MaxInFlightBodyBytes);
            return IngestResult.Problem(ValidationProblem.Overloaded(), settings.RetryAfter);
        }
        ValidationOutcome outcome;
        try
        {
            outcome = validator.Validate(body.Memory, routeType, timeProvider.GetUtcNow());
        }
        finally
        {
            admission.Release(parseCost);
        }
        if (outcome is ValidationOutcome.Refused refused)
        {
            LogRefused(logger, refused.Problem.Status, refused.Problem.Errors.Count);
            return IngestResult.Problem(refused.Problem);
        }

        var events = ((ValidationOutcome.Valid)outcome).Events;
        using var timeout = new CancellationTokenSource(settings.SendTimeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            await queue.SendAsync(events, linked.Token);
        }
        catch (ServiceBusException ex) when (ex.Reason == ServiceBusFailureReason.MessageSizeExceeded)
        {
            LogQueueFailed(logger, ex.GetType().Name, LogText.Escape(ex.Message));
            return IngestResult.Problem(ValidationProblem.QueueRefusedSize());
        }
        catch (Exception ex) when (IsQueueFailure(ex, cancellationToken))
        {
            LogQueueFailed(logger, ex.GetType().Name, LogText.Escape(ex.Message));
            return IngestResult.Problem(ValidationProblem.QueueUnavailable(), settings.RetryAfter);
        }

        var messageIds = new string[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            messageIds[i] = events[i].MessageId;
        }
        LogAccepted(logger, events.Count);
        metrics.Accepted(events.Count);
        return IngestResult.Accepted(messageIds);
    }

    /// <summary>Faults of the queue or the path to it, answered 503 so the sender retries. A cancelled request
    /// (the caller went away) and bugs are not: they surface as they are.</summary>
    internal static bool IsQueueFailure(Exception ex, CancellationToken requestAborted) => ex switch
    {
        OperationCanceledException => !requestAborted.IsCancellationRequested,
        ServiceBusException or RequestFailedException or TimeoutException or UnauthorizedAccessException
            or AuthenticationFailedException or CredentialUnavailableException or SocketException
            or IOException or HttpRequestException or ObjectDisposedException or QueueUnavailableException => true,
        _ => false,
    };

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Ingest accepted {Count} event(s)")]
    private static partial void LogAccepted(ILogger logger, int count);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "Ingest refused a request with {Status} ({ProblemCount} problem(s))")]
    private static partial void LogRefused(ILogger logger, int status, int problemCount);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "Ingest answered 503: request bodies in flight (and their parses) would exceed Ingest__MaxInFlightBodyBytes ({Limit} bytes)")]
    private static partial void LogBusy(ILogger logger, long limit);

    [LoggerMessage(EventId = 4008, Level = LogLevel.Warning, Message = "Ingest answered 408: a body arriving slower than Ingest__MinBodyBytesPerSecond ({MinRate} bytes/s) gave its memory to another request")]
    private static partial void LogEvicted(ILogger logger, int minRate);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Information, Message = "Ingest replaced {Count} lone UTF-16 surrogate escape(s) with U+FFFD")]
    private static partial void LogLoneSurrogates(ILogger logger, int count);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Ingest could not enqueue: {ExceptionType}: {Reason}")]
    private static partial void LogQueueFailed(ILogger logger, string exceptionType, string reason);
}
