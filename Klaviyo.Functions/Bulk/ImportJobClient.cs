using System.Globalization;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Bulk;

/// <summary>What one look at an import job found (spec 8.3).</summary>
internal abstract record ImportJobCheck
{
    private ImportJobCheck() { }

    /// <summary>Klaviyo is still at it (<c>queued</c>, <c>processing</c>): poll again later; nothing is settled.</summary>
    public sealed record Running(string Status) : ImportJobCheck;

    /// <summary>The job is over for the relay: one verdict per item of the ticket, in item order. <paramref name="State"/>
    /// is the final state the wait metric is tagged with.</summary>
    public sealed record Settled(IReadOnlyList<BulkVerdict> PerItem, string State) : ImportJobCheck;

    /// <summary>Klaviyo could not be asked now (429, 408, 5xx, timeout, or the relay's own limiter held the GET back:
    /// <paramref name="HeldBack"/>): poll again no sooner than <paramref name="RetryAfter"/>; the job's messages are
    /// untouched and spend no attempt.</summary>
    public sealed record NotNow(TimeSpan? RetryAfter, string Description, bool HeldBack = false) : ImportJobCheck;
}

/// <summary>
/// Asks Klaviyo how an import job went: <c>GET /api/profile-bulk-import-jobs/{id}</c>, and once it is <c>complete</c>
/// every page of <c>GET …/{id}/import-errors</c>, then settles each item through <see cref="ImportJobAnswer.Settle"/>.
/// Nothing is ever settled as delivered on an answer that was not read whole: an unreadable status, an unreadable or
/// unfollowable page of errors, or more pages than <see cref="MaxErrorPages"/> retries the job's messages later.
/// </summary>
internal sealed partial class ImportJobClient(KlaviyoClient klaviyo, IOptions<KlaviyoOptions> options, RelayMetrics metrics, TimeProvider time, ILogger<ImportJobClient> logger)
{
    /// <summary>Import errors asked per page: Klaviyo's maximum (default 20), so a job needs as few GETs as it can.</summary>
    public const int ErrorsPageSize = 100;

    /// <summary>
    /// Most pages of import errors read for one job. A job holds at most 10,000 profiles, and 100 pages of 100 hold an
    /// error for every one of them; more means Klaviyo's paging is looping or lying. 100 GETs are also two thirds of the
    /// endpoint's 150/min budget, about as much as one job may take of it.
    /// </summary>
    public const int MaxErrorPages = 100;

    public async Task<ImportJobCheck> CheckAsync(JobTicket ticket, CancellationToken cancellationToken)
    {
        var job = $"import job {ticket.JobId} of POST {ticket.Path}";
        var request = KlaviyoRequest.Get(KlaviyoEndpoint.GetImportJob, KlaviyoApi.ImportJobPath(ticket.JobId));
        var response = await klaviyo.SendAsync(request, cancellationToken).ConfigureAwait(false);
        ImportJobState state;
        switch (response)
        {
            case KlaviyoResponse.Success { Unread: { } unread } success:
                state = new ImportJobState.Unreadable($"{request} answered {success.StatusCode}, then {unread}");
                break;
            case KlaviyoResponse.Success success:
                state = ImportJobAnswer.ParseStatus(success.Body.Span);
                break;
            case KlaviyoResponse.Rejected rejected:
                return Settle(ticket, "unknown", ImportJobAnswer.Each(ticket, new BulkVerdict.RetryLater(null,
                    $"{job}: {Answered(request, rejected.StatusCode, rejected.Errors)}; the job is unknown, its profiles are imported again later")));
            default:
                return NotSettled(ticket, job, request, response);
        }

        switch (state)
        {
            case ImportJobState.Running running:
                return new ImportJobCheck.Running(running.Status);
            case ImportJobState.Ended ended:
                return Settle(ticket, ended.Status, ImportJobAnswer.Settle(ticket, state, null));
            case ImportJobState.Unreadable:
                return Settle(ticket, "unreadable", ImportJobAnswer.Settle(ticket, state, null));
        }

        if (state is ImportJobState.Complete { FailedCount: 0 })
        {
            // Klaviyo counted no failed profile: no import error can name one, so the errors are not read (a GET
            // against the endpoint's 150/min spared per job).
            return Settle(ticket, "complete", ImportJobAnswer.Settle(ticket, state, []));
        }
        var errors = await ReadErrorsAsync(ticket, job, cancellationToken).ConfigureAwait(false);
        if (errors.Stop is { } stop)
        {
            return stop;
        }
        if (errors.Unreadable is { } why)
        {
            return Settle(ticket, "unreadable", ImportJobAnswer.Each(ticket, new BulkVerdict.RetryLater(null, $"{job} is complete, but its import errors could not be read: {why}")));
        }
        return Settle(ticket, "complete", ImportJobAnswer.Settle(ticket, state, errors.Errors));
    }

    /// <summary>Every page of the job's import errors, following <c>links.next</c> only to the same import-errors path at
    /// <c>Klaviyo__BaseUrl</c>; or why they could not be read; or a check that ends here (not now, unauthorized).</summary>
    private async Task<(IReadOnlyList<ImportError>? Errors, string? Unreadable, ImportJobCheck? Stop)> ReadErrorsAsync(JobTicket ticket, string job, CancellationToken cancellationToken)
    {
        var errorsPath = KlaviyoApi.ImportErrorsPath(ticket.JobId);
        var path = $"{errorsPath}?page[size]={ErrorsPageSize.ToString(CultureInfo.InvariantCulture)}";
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var all = new List<ImportError>();
        for (var page = 1; ; page++)
        {
            if (page > MaxErrorPages)
            {
                return (null, $"links.next goes on past {MaxErrorPages} pages", null);
            }
            var request = KlaviyoRequest.Get(KlaviyoEndpoint.GetImportErrors, path);
            var response = await klaviyo.SendAsync(request, cancellationToken).ConfigureAwait(false);
            ImportErrorsPage? read;
            switch (response)
            {
                case KlaviyoResponse.Success { Unread: { } unread } success:
                    return (null, $"GET {errorsPath} (page {page}) answered {success.StatusCode}, then {unread}", null);
                case KlaviyoResponse.Success success:
                    read = ImportJobAnswer.ParseErrors(success.Body.Span);
                    if (read is null)
                    {
                        return (null, $"page {page} is not an import-errors document (data[] of objects with attributes)", null);
                    }
                    break;
                case KlaviyoResponse.Rejected rejected:
                    return (null, $"page {page}: " + Answered(request, rejected.StatusCode, rejected.Errors), null);
                default:
                    return (null, null, NotSettled(ticket, job, request, response));
            }
            all.AddRange(read.Errors);
            if (read.Next is null)
            {
                return (all, null, null);
            }
            if (!NextLinks.TryFollow(read.Next, options.Value.BaseUrl, errorsPath, out path, out var refused))
            {
                return (null, $"page {page}'s links.next {refused}", null);
            }
            if (!visited.Add(path))
            {
                return (null, $"page {page}'s links.next points back at a page already read", null);
            }
        }
    }

    /// <summary>A GET that did not get a readable answer: 401/403 settle every item unauthorized; the rest (held back,
    /// 429, 408, 5xx, timeout) is not now.</summary>
    private ImportJobCheck NotSettled(JobTicket ticket, string job, KlaviyoRequest request, KlaviyoResponse response) => response switch
    {
        KlaviyoResponse.HeldBack held => new ImportJobCheck.NotNow(held.RetryAfter, Redact($"{job}: {held.Description}"), HeldBack: true),
        KlaviyoResponse.Transient transient => new ImportJobCheck.NotNow(transient.RetryAfter, Redact($"{job}: {transient.Description}")),
        KlaviyoResponse.Unauthorized unauthorized => Settle(ticket, "unauthorized", ImportJobAnswer.Each(ticket, new BulkVerdict.DeadLetter(
            BulkRefusal.KlaviyoUnauthorized,
            $"{job}: {Answered(request, unauthorized.StatusCode, unauthorized.Errors)} — {KlaviyoApi.UnauthorizedHint(request.Endpoint)}"))),
        _ => throw new InvalidOperationException($"Unexpected Klaviyo response {response.GetType().Name} here."),
    };

    private ImportJobCheck.Settled Settle(JobTicket ticket, string state, IReadOnlyList<BulkVerdict> verdicts)
    {
        var perItem = verdicts.Select(v => v switch
        {
            BulkVerdict.DeadLetter d => d with { Description = Redact(d.Description) },
            BulkVerdict.RetryLater r => r with { Cause = Redact(r.Cause) },
            _ => v,
        }).ToArray();
        var wait = time.GetUtcNow() - ticket.CreatedAt;
        metrics.ImportJobSettled(state, wait);
        LogSettled(logger, ticket.JobId, state, wait,
            perItem.Count(v => v is BulkVerdict.Delivered), perItem.Count(v => v is BulkVerdict.DeadLetter), perItem.Count(v => v is BulkVerdict.RetryLater));
        return new ImportJobCheck.Settled(perItem, state);
    }

    private static string Answered(KlaviyoRequest request, int status, IReadOnlyList<KlaviyoError> errors) =>
        $"GET {request.Path.Split('?')[0]} answered {status.ToString(CultureInfo.InvariantCulture)}" + (errors.Count == 0 ? "" : ": " + KlaviyoResponse.Describe(errors));

    /// <summary>Klaviyo has no reason to echo the key, but import error details end up in dead-letter descriptions.</summary>
    private string Redact(string text)
    {
        var key = options.Value.PrivateApiKey;
        return string.IsNullOrEmpty(key) ? text : text.Replace(key, "***", StringComparison.Ordinal);
    }

    [LoggerMessage(EventId = 3060, Level = LogLevel.Information,
        Message = "Import job {JobId} settled as '{State}' after {Wait}: {Delivered} profile(s) delivered, {DeadLettered} dead-lettered, {Retried} to retry")]
    private static partial void LogSettled(ILogger logger, string jobId, string state, TimeSpan wait, int delivered, int deadLettered, int retried);
}
