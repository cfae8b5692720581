namespace Klaviyo.Functions.Klaviyo;

/// <summary>One JSON:API error object as Klaviyo sends it (<c>errors[]</c>); spec section 6 description material.</summary>
internal sealed record KlaviyoError(string? Code, string? Title, string? Detail, string? Pointer, string? Parameter);

/// <summary>A Klaviyo answer, classified (spec section 6). Expected failures are values, not exceptions.</summary>
internal abstract record KlaviyoResponse
{
    private KlaviyoResponse() { }

    /// <summary>2xx. <paramref name="DataId"/> is the answer's <c>data.id</c> when the body has one (profile-import).
    /// <paramref name="Unread"/> says why the body ended before a <c>data.id</c> could be read (it stalled, or the connection
    /// dropped); null when the body was read (with or without an id). A 2xx stands either way: the call is not repeated,
    /// unless the plan needs the id it did not get.</summary>
    public sealed record Success(int StatusCode, string? DataId, string? Unread = null) : KlaviyoResponse
    {
        /// <summary>A GET's whole body (at most <see cref="KlaviyoAnswerHandler.MaxGetBodyBytes"/>); empty for a POST, and
        /// empty when <see cref="Unread"/> says the body was over that bound, stalled or broke off: never a partial body.</summary>
        public ReadOnlyMemory<byte> Body { get; init; }
    }

    /// <summary>Worth trying again later: 408, 429, 5xx, timeout or connection failure, after in-call retries.
    /// <paramref name="StatusCode"/> is null when no answer came.</summary>
    public sealed record Transient(int? StatusCode, TimeSpan? RetryAfter, string Description) : KlaviyoResponse;

    /// <summary>
    /// Not sent: the relay's own limiter held the call back (its share of Klaviyo's budget is spent, or Klaviyo
    /// asked for a pause). Not a Klaviyo answer and not a failure: it spends none of the message's attempts.
    /// </summary>
    public sealed record HeldBack(TimeSpan RetryAfter, string Description) : KlaviyoResponse;

    /// <summary>A non-retryable answer other than 401/403.</summary>
    public sealed record Rejected(int StatusCode, IReadOnlyList<KlaviyoError> Errors) : KlaviyoResponse;

    /// <summary>401 or 403: the key is wrong, or lacks the endpoint's scope.</summary>
    public sealed record Unauthorized(int StatusCode, IReadOnlyList<KlaviyoError> Errors) : KlaviyoResponse;

    /// <summary>Klaviyo's errors as one line: <c>code: detail (pointer /data/…)</c>, joined by "; ".</summary>
    public static string Describe(IReadOnlyList<KlaviyoError> errors) =>
        string.Join("; ", errors.Select(e =>
        {
            var text = string.Join(": ", new[] { e.Code, e.Detail ?? e.Title }.Where(s => !string.IsNullOrEmpty(s)));
            if (!string.IsNullOrEmpty(e.Pointer))
            {
                text += $" (pointer {e.Pointer})";
            }
            else if (!string.IsNullOrEmpty(e.Parameter))
            {
                text += $" (parameter {e.Parameter})";
            }
            return text;
        }));
}
