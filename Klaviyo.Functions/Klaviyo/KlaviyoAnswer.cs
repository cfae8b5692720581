using System.Text.Json;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>
/// What the relay keeps of one Klaviyo answer: a POST 2xx's <c>data.id</c> (nothing else of it is needed), a GET 2xx's
/// whole body (up to <see cref="KlaviyoAnswerHandler.MaxGetBodyBytes"/>), or the first
/// <see cref="KlaviyoAnswerHandler.MaxErrorBodyBytes"/> of an error body. <see cref="Unread"/> says why the body could not
/// be read as far as it mattered (it stalled, the connection dropped, or a GET's body was over its bound), null when it was.
/// </summary>
internal sealed class KlaviyoAnswerContent(byte[] errorBody, string? dataId, string? unread) : ByteArrayContent(errorBody)
{
    public string? DataId { get; } = dataId;

    public string? Unread { get; } = unread;

    public ReadOnlyMemory<byte> ErrorBody { get; } = errorBody;

    /// <summary>A GET 2xx's whole body; empty otherwise, and empty whenever <see cref="Unread"/> is set.</summary>
    public ReadOnlyMemory<byte> Body { get; private init; }

    public static KlaviyoAnswerContent WholeBody(byte[] body) => new([], null, null) { Body = body };
}

/// <summary>
/// Reads each answer's body inside the try, so that <c>Relay__AttemptTimeout</c> covers the whole exchange (send, headers,
/// body), and within a bound, so that no answer can hold memory or a delivery: a POST's 2xx is scanned for <c>data.id</c>
/// and left as soon as it is found (at most <see cref="MaxDataIdScanBytes"/>), a GET's 2xx is kept whole up to
/// <see cref="MaxGetBodyBytes"/>, an error body is kept up to
/// <see cref="MaxErrorBodyBytes"/>. A body that stalls or breaks off is not an exception: the status already decides
/// the class (spec section 6), and the processor retries a 2xx whose profile id never came.
/// Sits between the resilience handler (inside its per-try timeout) and the rate limiter.
/// </summary>
internal sealed class KlaviyoAnswerHandler : DelegatingHandler
{
    /// <summary>Most of a 2xx body scanned for <c>data.id</c>; Klaviyo puts it before the attributes. The scan buffer
    /// grows past 4 KiB only for a token that does not fit, and never past this.</summary>
    public const int MaxDataIdScanBytes = 1024 * 1024;

    /// <summary>Most of an error body kept: Klaviyo's <c>errors[]</c> fit in far less, and descriptions are cut at 1 KB.</summary>
    public const int MaxErrorBodyBytes = 64 * 1024;

    /// <summary>Most of a GET 2xx body kept whole (a job status is under 1 KB; a page of 100 import errors with their
    /// original payloads is typically well under this). A larger body is not read on: it is unread, never partial.</summary>
    public const int MaxGetBodyBytes = 1024 * 1024;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var original = response.Content;
        try
        {
            response.Content = FailureClassifier.Classify((int)response.StatusCode) != FailureKind.None
                ? await ReadErrorBodyAsync(original, cancellationToken).ConfigureAwait(false)
                : request.Method == HttpMethod.Get
                    ? await ReadWholeBodyAsync(original, cancellationToken).ConfigureAwait(false)
                    : await ScanDataIdAsync(original, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            original.Dispose(); // an unread rest is dropped with its connection
        }
        return response;
    }

    private static async Task<KlaviyoAnswerContent> ScanDataIdAsync(HttpContent content, CancellationToken cancellationToken)
    {
        var scanner = new DataIdScanner();
        var buffer = new byte[4096];
        var filled = 0;
        var total = 0;
        try
        {
            var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                while (true)
                {
                    if (filled == buffer.Length)
                    {
                        Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxDataIdScanBytes)); // one token longer than the buffer
                    }
                    var read = await stream.ReadAsync(buffer.AsMemory(filled, Math.Min(buffer.Length - filled, MaxDataIdScanBytes - total)), cancellationToken).ConfigureAwait(false);
                    filled += read;
                    total += read;
                    var final = read == 0;
                    var scan = scanner.Feed(buffer.AsSpan(0, filled), final, out var consumed);
                    if (scan != DataIdScanner.Result.NeedMore || final || total >= MaxDataIdScanBytes)
                    {
                        return new KlaviyoAnswerContent([], scanner.DataId, null);
                    }
                    Buffer.BlockCopy(buffer, consumed, buffer, 0, filled - consumed);
                    filled -= consumed;
                }
            }
        }
        catch (Exception e) when (IsBodyFailure(e))
        {
            return new KlaviyoAnswerContent([], scanner.DataId, Describe(e));
        }
    }

    private static async Task<KlaviyoAnswerContent> ReadWholeBodyAsync(HttpContent content, CancellationToken cancellationToken)
    {
        const string overBound = "the answer's body was over 1 MiB (KlaviyoAnswerHandler.MaxGetBodyBytes) and was not read";
        if (content.Headers.ContentLength > MaxGetBodyBytes)
        {
            return new KlaviyoAnswerContent([], null, overBound);
        }
        var buffer = new byte[(int)Math.Clamp(content.Headers.ContentLength ?? 4096, 256, MaxGetBodyBytes + 1)];
        var filled = 0;
        try
        {
            var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                while (true)
                {
                    if (filled == buffer.Length)
                    {
                        if (filled > MaxGetBodyBytes)
                        {
                            return new KlaviyoAnswerContent([], null, overBound);
                        }
                        // One byte past the bound tells a body of exactly the bound from a longer one.
                        Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxGetBodyBytes + 1));
                    }
                    var read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        return KlaviyoAnswerContent.WholeBody(buffer[..filled]);
                    }
                    filled += read;
                }
            }
        }
        catch (Exception e) when (IsBodyFailure(e))
        {
            return new KlaviyoAnswerContent([], null, Describe(e));
        }
    }

    private static async Task<KlaviyoAnswerContent> ReadErrorBodyAsync(HttpContent content, CancellationToken cancellationToken)
    {
        var buffer = new byte[(int)Math.Clamp(content.Headers.ContentLength ?? 4096, 256, MaxErrorBodyBytes)];
        var filled = 0;
        try
        {
            var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                while (filled < MaxErrorBodyBytes)
                {
                    if (filled == buffer.Length)
                    {
                        Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxErrorBodyBytes));
                    }
                    var read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }
                    filled += read;
                }
            }
            return new KlaviyoAnswerContent(buffer[..filled], null, null);
        }
        catch (Exception e) when (IsBodyFailure(e))
        {
            return new KlaviyoAnswerContent(buffer[..filled], null, Describe(e));
        }
    }

    private static bool IsBodyFailure(Exception e) => e is OperationCanceledException or IOException or HttpRequestException;

    private static string Describe(Exception e) => e is OperationCanceledException
        ? "the answer's body stalled past Relay__AttemptTimeout"
        : "the connection was lost while reading the answer's body";
}

/// <summary>Finds <c>data.id</c> (a string, in the root object's <c>data</c> object) in JSON fed chunk by chunk, without
/// materialising the document; stops at the first answer.</summary>
internal sealed class DataIdScanner
{
    public enum Result
    {
        NeedMore,
        Found,
        NotThere,
    }

    private enum Step
    {
        Start,
        InRoot,
        AfterDataName,
        InData,
        AfterIdName,
    }

    private JsonReaderState _state;
    private Step _step;

    public string? DataId { get; private set; }

    /// <param name="bytes">The bytes not yet consumed followed by the new ones.</param>
    /// <param name="isFinal">No more bytes will come.</param>
    /// <param name="consumed">How many of <paramref name="bytes"/> were used; the rest must be fed again.</param>
    public Result Feed(ReadOnlySpan<byte> bytes, bool isFinal, out int consumed)
    {
        var reader = new Utf8JsonReader(bytes, isFinal, _state);
        consumed = 0;
        try
        {
            while (reader.Read())
            {
                var result = Next(ref reader);
                if (result != Result.NeedMore)
                {
                    return result;
                }
            }
        }
        catch (JsonException)
        {
            return Result.NotThere; // not JSON: no id
        }
        consumed = (int)reader.BytesConsumed;
        _state = reader.CurrentState;
        return isFinal ? Result.NotThere : Result.NeedMore;
    }

    private Result Next(ref Utf8JsonReader reader)
    {
        switch (_step)
        {
            case Step.Start:
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    return Result.NotThere;
                }
                _step = Step.InRoot;
                break;
            case Step.InRoot:
                if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("data"u8))
                {
                    _step = Step.AfterDataName;
                }
                else if (reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == 0)
                {
                    return Result.NotThere;
                }
                break;
            case Step.AfterDataName:
                _step = reader.TokenType == JsonTokenType.StartObject ? Step.InData : Step.InRoot;
                break;
            case Step.InData:
                if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 2 && reader.ValueTextEquals("id"u8))
                {
                    _step = Step.AfterIdName;
                }
                else if (reader.TokenType == JsonTokenType.EndObject && reader.CurrentDepth == 1)
                {
                    return Result.NotThere;
                }
                break;
            case Step.AfterIdName:
                if (reader.TokenType == JsonTokenType.String)
                {
                    var id = reader.GetString();
                    if (string.IsNullOrEmpty(id))
                    {
                        return Result.NotThere;
                    }
                    DataId = id;
                    return Result.Found;
                }
                _step = Step.InData;
                break;
        }
        return Result.NeedMore;
    }
}
