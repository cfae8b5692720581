using System.Net.Sockets;
using Azure;
using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Events;
using Klaviyo.Functions.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Ingest;

/// <summary>One ingest request, free of ASP.NET Core types.</summary>
/// <param name="RouteType">The type segment of <c>/api/v1/{type}</c>; null on <c>/api/events</c> and <c>/api/v1/batch</c>.</param>
public sealed record IngestRequest(Stream Body, string? ContentType, long? ContentLength, string? Signature, string? RouteType = null);

/// <summary>
/// Decides one ingest request (spec section 7): size cap, signature, content type, all-or-nothing validation, then one
/// queue message per event. 202 is answered only after the queue acknowledged every message.
/// </summary>
public sealed partial class IngestHandler(
    EventValidator validator,
    SignatureVerifier signatures,
    IEventQueue queue,
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

        using var body = await RequestBody.ReadAsync(request.Body, settings.MaxRequestBytes, request.ContentLength, cancellationToken);
        if (body is null)
        {
            LogRefused(logger, 413, 0);
            return IngestResult.Problem(ValidationProblem.RequestTooLarge(settings.MaxRequestBytes));
        }

        // Authenticate before looking at what was sent: an unsigned caller learns nothing about the content rules.
        if (!signatures.Verify(body.Memory.Span, request.Signature))
        {
            LogRefused(logger, 401, 0);
            return IngestResult.Problem(ValidationProblem.BadSignature(missing: string.IsNullOrWhiteSpace(request.Signature)));
        }

        if (!ContentTypes.IsJson(request.ContentType))
        {
            LogRefused(logger, 415, 0);
            return IngestResult.Problem(ValidationProblem.UnsupportedMediaType(request.ContentType));
        }

        var outcome = validator.Validate(body.Memory, routeType, timeProvider.GetUtcNow());
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
            LogQueueFailed(logger, ex.GetType().Name, ex.Message);
            return IngestResult.Problem(ValidationProblem.QueueRefusedSize());
        }
        catch (Exception ex) when (IsQueueFailure(ex, cancellationToken))
        {
            LogQueueFailed(logger, ex.GetType().Name, ex.Message);
            return IngestResult.Problem(ValidationProblem.QueueUnavailable(), settings.RetryAfter);
        }

        var messageIds = new string[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            messageIds[i] = events[i].MessageId;
        }
        LogAccepted(logger, events.Count);
        return IngestResult.Accepted(messageIds);
    }

    /// <summary>Faults of the queue or the path to it, answered 503 so the sender retries. A cancelled request
    /// (the caller went away) and bugs are not: they surface as they are.</summary>
    private static bool IsQueueFailure(Exception ex, CancellationToken requestAborted) => ex switch
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

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Ingest could not enqueue: {ExceptionType}: {Reason}")]
    private static partial void LogQueueFailed(ILogger logger, string exceptionType, string reason);
}
