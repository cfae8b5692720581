using System.Net.Http.Headers;
using System.Text.Json;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>
/// Talks to Klaviyo's JSON:API (spec section 2) through the typed <see cref="HttpClient"/> registered by
/// <c>AddKlaviyoClient</c>, whose pipeline does the per-try timeout, the short in-call retries and the rate limiting.
/// Returns a classified <see cref="KlaviyoResponse"/>; throws only when the caller cancels.
/// </summary>
public sealed class KlaviyoClient(HttpClient http, IOptions<KlaviyoOptions> options, RelayMetrics metrics, TimeProvider time)
{
    private static readonly MediaTypeHeaderValue JsonApi = new(KlaviyoApi.MediaType);

    /// <summary>Sets the headers every call carries. The key goes only into the Authorization header.</summary>
    internal static void Configure(HttpClient http, KlaviyoOptions klaviyo)
    {
        http.BaseAddress = new Uri(klaviyo.BaseUrl.TrimEnd('/') + "/");
        http.Timeout = Timeout.InfiniteTimeSpan; // the resilience pipeline owns timeouts
        http.MaxResponseContentBufferSize = 1024 * 1024;
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Klaviyo-API-Key", klaviyo.PrivateApiKey);
        http.DefaultRequestHeaders.Add("revision", klaviyo.Revision);
        http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue(KlaviyoApi.MediaType));
    }

    public async Task<KlaviyoResponse> SendAsync(KlaviyoRequest request, CancellationToken cancellationToken = default)
    {
        // Relative to BaseAddress, so a BaseUrl with a path (a proxy) keeps its prefix.
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(request.Path.TrimStart('/'), UriKind.Relative))
        {
            Content = new ReadOnlyMemoryContent(request.Body) { Headers = { ContentType = JsonApi } },
        };
        message.Options.Set(KlaviyoRateLimits.EndpointOption, request.Endpoint);
        message.Options.Set(KlaviyoRateLimits.KlaviyoRefusedOption, new System.Runtime.CompilerServices.StrongBox<int>());

        var started = time.GetTimestamp();
        try
        {
            using var response = await http.SendAsync(message, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
            metrics.KlaviyoCallCompleted(request.Endpoint, (int)response.StatusCode, time.GetElapsedTime(started));
            return await ClassifyAsync(response, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (KlaviyoHeldBackException held)
        {
            // Not sent, so not a Klaviyo call; unless an earlier try of this call was refused by Klaviyo itself.
            metrics.HeldBack(request.Endpoint);
            var why = $"POST {request.Path}: held back by the relay's rate limiter ({held.Reason})";
            return message.Options.TryGetValue(KlaviyoRateLimits.KlaviyoRefusedOption, out var refused) && refused.Value != 0
                ? new KlaviyoResponse.Transient(refused.Value, held.RetryAfter, $"POST {request.Path} answered {refused.Value}, then {why}")
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
            return new KlaviyoResponse.Transient(null, null, $"POST {request.Path}: {what}");
        }
    }

    private async Task<KlaviyoResponse> ClassifyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        var path = response.RequestMessage?.RequestUri?.AbsolutePath ?? "";
        switch (FailureClassifier.Classify(status))
        {
            case FailureKind.None:
                var data = await ReadAsync(response, KlaviyoJsonContext.Default.KlaviyoDataDocument, cancellationToken).ConfigureAwait(false);
                return new KlaviyoResponse.Success(status, string.IsNullOrEmpty(data?.Data?.Id) ? null : data.Data.Id);
            case FailureKind.Transient:
                var retryAfter = RetryAfterHeader.Read(response, time);
                var description = $"POST {path} answered {status}" + Suffix(await ErrorsAsync(response, cancellationToken).ConfigureAwait(false));
                return new KlaviyoResponse.Transient(status, retryAfter, description);
            case FailureKind.Unauthorized:
                return new KlaviyoResponse.Unauthorized(status, await ErrorsAsync(response, cancellationToken).ConfigureAwait(false));
            default:
                return new KlaviyoResponse.Rejected(status, await ErrorsAsync(response, cancellationToken).ConfigureAwait(false));
        }
    }

    private static string Suffix(IReadOnlyList<KlaviyoError> errors) => errors.Count == 0 ? "" : ": " + KlaviyoResponse.Describe(errors);

    private async Task<IReadOnlyList<KlaviyoError>> ErrorsAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var document = await ReadAsync(response, KlaviyoJsonContext.Default.KlaviyoErrorDocument, cancellationToken).ConfigureAwait(false);
        return document?.Errors?.Select(e => new KlaviyoError(
            Redact(e.Code), Redact(e.Title), Redact(e.Detail), Redact(e.Source?.Pointer), Redact(e.Source?.Parameter))).ToList() ?? [];
    }

    /// <summary>Klaviyo has no reason to echo the key, but an error text ends up in logs and dead-letter descriptions.</summary>
    private string? Redact(string? text)
    {
        var key = options.Value.PrivateApiKey;
        return text is null || string.IsNullOrEmpty(key) ? text : text.Replace(key, "***", StringComparison.Ordinal);
    }

    private static async Task<T?> ReadAsync<T>(HttpResponseMessage response, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken cancellationToken)
        where T : class
    {
        if (response.Content.Headers.ContentLength is 0)
        {
            return null;
        }
        try
        {
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                return await JsonSerializer.DeserializeAsync(stream, type, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (JsonException)
        {
            return null; // not JSON or not the expected shape: no id, no details
        }
    }
}
