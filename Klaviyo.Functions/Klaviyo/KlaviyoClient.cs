using System.Net.Http.Headers;
using System.Text.Json;
using Klaviyo.Functions.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>
/// Talks to Klaviyo's JSON:API (spec section 2) through the typed <see cref="HttpClient"/> registered by
/// <c>AddKlaviyoClient</c>, whose pipeline does the per-try timeout, the short in-call retries and the rate limiting.
/// Returns a classified <see cref="KlaviyoResponse"/>; throws only when the caller cancels. The pipeline's
/// <see cref="KlaviyoAnswerHandler"/> has read what matters of the body inside the try, within a bound.
/// </summary>
internal sealed partial class KlaviyoClient(HttpClient http, IOptions<KlaviyoOptions> options, RelayMetrics metrics, TimeProvider time, ILogger<KlaviyoClient> logger)
{
    private static readonly MediaTypeHeaderValue JsonApi = new(KlaviyoApi.MediaType);

    /// <summary>Sets the headers every call carries. The key goes only into the Authorization header.</summary>
    internal static void Configure(HttpClient http, KlaviyoOptions klaviyo)
    {
        http.BaseAddress = new Uri(klaviyo.BaseUrl.TrimEnd('/') + "/");
        http.Timeout = Timeout.InfiniteTimeSpan; // the resilience pipeline owns timeouts
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Klaviyo-API-Key", klaviyo.PrivateApiKey);
        http.DefaultRequestHeaders.Add("revision", klaviyo.Revision);
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue(KlaviyoApi.MediaType));
    }

    public async Task<KlaviyoResponse> SendAsync(KlaviyoRequest request, CancellationToken cancellationToken = default)
    {
        // Relative to BaseAddress, so a BaseUrl with a path (a proxy) keeps its prefix.
        using var message = new HttpRequestMessage(request.Method, new Uri(request.Path.TrimStart('/'), UriKind.Relative));
        if (request.Method != HttpMethod.Get)
        {
            message.Content = new ReadOnlyMemoryContent(request.Body) { Headers = { ContentType = JsonApi } };
        }
        message.Options.Set(KlaviyoRateLimits.EndpointOption, KlaviyoRateLimits.BudgetOf(request.Endpoint));
        message.Options.Set(KlaviyoRateLimits.KlaviyoRefusedOption, new System.Runtime.CompilerServices.StrongBox<int>());

        var started = time.GetTimestamp();
        try
        {
            // Headers-read: the body is already read (or given up) by KlaviyoAnswerHandler, inside the attempt timeout.
            using var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested(); // a body read cut short by the caller is a cancellation, not an answer
            metrics.KlaviyoCallCompleted(request.Endpoint, (int)response.StatusCode, time.GetElapsedTime(started));
            return Classify(response, request);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (KlaviyoHeldBackException held)
        {
            // Not sent, so not a Klaviyo call; unless an earlier try of this call was refused by Klaviyo itself.
            metrics.HeldBack(request.Endpoint);
            var why = $"{request.Method.Method} {request.Path}: held back by the relay's rate limiter ({held.Reason})";
            return message.Options.TryGetValue(KlaviyoRateLimits.KlaviyoRefusedOption, out var refused) && refused.Value != 0
                ? new KlaviyoResponse.Transient(refused.Value, held.RetryAfter, $"{request.Method.Method} {request.Path} answered {refused.Value}, then {why}")
                : new KlaviyoResponse.HeldBack(held.RetryAfter, why);
        }
        catch (Exception e) when (FailureClassifier.IsTransient(e) || e is OperationCanceledException)
        {
            metrics.KlaviyoCallCompleted(request.Endpoint, null, time.GetElapsedTime(started));
            var what = e switch
            {
                HttpRequestException h => $"connection failed ({h.HttpRequestError})",
                IOException => "connection lost",
                _ => "timed out",
            };
            return new KlaviyoResponse.Transient(null, null, $"{request.Method.Method} {request.Path}: {what}");
        }
    }

    private KlaviyoResponse Classify(HttpResponseMessage response, KlaviyoRequest request)
    {
        var status = (int)response.StatusCode;
        var path = response.RequestMessage?.RequestUri?.AbsolutePath ?? "";
        var answer = response.Content as KlaviyoAnswerContent;
        switch (FailureClassifier.Classify(status))
        {
            case FailureKind.None:
                if (answer?.Unread is { } unread)
                {
                    LogUnreadSuccess(logger, request.Method.Method, request.Path, status, unread, answer.DataId is not null);
                }
                return new KlaviyoResponse.Success(status, answer?.DataId, answer?.DataId is null ? answer?.Unread : null)
                {
                    Body = answer?.Unread is null ? answer?.Body ?? default : default,
                };
            case FailureKind.Transient:
                var retryAfter = RetryAfterHeader.Read(response, time);
                var description = $"{request.Method.Method} {path} answered {status}" + Suffix(Errors(answer));
                return new KlaviyoResponse.Transient(status, retryAfter, description);
            case FailureKind.Unauthorized:
                return new KlaviyoResponse.Unauthorized(status, Errors(answer));
            default:
                return new KlaviyoResponse.Rejected(status, Errors(answer));
        }
    }

    private static string Suffix(IReadOnlyList<KlaviyoError> errors) => errors.Count == 0 ? "" : ": " + KlaviyoResponse.Describe(errors);

    /// <summary>Klaviyo's <c>errors[]</c> from the kept part of an error body; none when it is not that JSON (or was cut).</summary>
    private IReadOnlyList<KlaviyoError> Errors(KlaviyoAnswerContent? answer)
    {
        if (answer is null || answer.ErrorBody.IsEmpty)
        {
            return [];
        }
        KlaviyoErrorDocument? document;
        try
        {
            document = JsonSerializer.Deserialize(answer.ErrorBody.Span, KlaviyoJsonContext.Default.KlaviyoErrorDocument);
        }
        catch (JsonException)
        {
            return [];
        }
        return document?.Errors?.Select(e => new KlaviyoError(
            Redact(e.Code), Redact(e.Title), Redact(e.Detail), Redact(e.Source?.Pointer), Redact(e.Source?.Parameter))).ToList() ?? [];
    }

    /// <summary>Klaviyo has no reason to echo the key, but an error text ends up in logs and dead-letter descriptions.</summary>
    private string? Redact(string? text)
    {
        var key = options.Value.PrivateApiKey;
        return text is null || string.IsNullOrEmpty(key) ? text : text.Replace(key, "***", StringComparison.Ordinal);
    }

    [LoggerMessage(EventId = 3050, Level = LogLevel.Warning, Message = "{Method} {Path} answered {Status}, then {Unread}; data.id read: {HasId}")]
    private static partial void LogUnreadSuccess(ILogger logger, string method, string path, int status, string unread, bool hasId);
}
