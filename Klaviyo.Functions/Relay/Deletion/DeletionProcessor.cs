using System.Security.Cryptography;
using System.Text;
using Klaviyo.Functions.Calls;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// Delivers a deletion (spec 5.7): one <c>POST /api/data-privacy-deletion-jobs</c> per identifier (email, E.164 phone,
/// profile id), a <c>userId</c> first resolved to profile ids through every page of
/// <c>GET /api/profiles?filter=equals(external_id,"…")</c>. A delete event is skipped with a warning unless
/// <c>Privacy__DeleteEvents</c> is on; the admin route's deletions always go. The person's email and phone never reach
/// a log line, a metric or a dead-letter description: a short hash stands in for them.
/// </summary>
/// <remarks>Every call is safe to repeat (Klaviyo queues a deletion again; a lookup finds fewer profiles once they are
/// gone), so a deletion retries as a whole like any other plan. A batch starts a single delivery only while the
/// longest plan (<see cref="RelayOptions.MaxCallsPerPlan"/> calls) still fits the message lock; a deletion may need more
/// calls, so past that many it starts another only while that one would still end within the same time, and is put off
/// (no attempt spent) otherwise.</remarks>
internal sealed partial class DeletionProcessor(
    KlaviyoClient klaviyo,
    OutcomePolicy policy,
    IOptions<PrivacyOptions> privacy,
    IOptions<KlaviyoOptions> klaviyoOptions,
    IOptions<RelayOptions> relayOptions,
    TimeProvider time,
    ILogger<DeletionProcessor> logger)
{
    /// <summary>Most pages of a userId's lookup (100 profiles each). One external_id names one profile in practice;
    /// more than 1,000 means Klaviyo's paging is looping, and the message retries rather than deleting part of a list.</summary>
    public const int MaxLookupPages = 10;

    public const string SkipReason = "delete events are not sent: Privacy__DeleteEvents is false (POST /api/privacy/deletions still deletes)";

    public async Task<RelayOutcome> DeliverAsync(DeletionParts parts, string messageId, int attempt, CancellationToken cancellationToken = default)
    {
        if (!parts.AdminRequest && !privacy.Value.DeleteEvents)
        {
            LogDeleteEventsOff(logger, messageId);
            return policy.Finish(new RelayOutcome.Skipped(SkipReason), messageId, attempt);
        }
        RelayOutcome outcome;
        try
        {
            outcome = await RunAsync(parts, messageId, attempt, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (OutcomePolicy.IsBug(ex, cancellationToken))
        {
            outcome = policy.Bug(ex, messageId, attempt);
        }
        return policy.Finish(Redacted(outcome, parts), messageId, attempt);
    }

    private async Task<RelayOutcome> RunAsync(DeletionParts parts, string messageId, int attempt, CancellationToken cancellationToken)
    {
        var clock = new CallClock(time, relayOptions.Value);
        var jobs = new List<(DeletionIdentifier Kind, string Value)>(3);
        if (parts.Email is { } email)
        {
            jobs.Add((DeletionIdentifier.Email, email));
        }
        if (parts.Phone is { } phone)
        {
            jobs.Add((DeletionIdentifier.Phone, phone));
        }
        if (parts.ProfileId is { } profileId)
        {
            jobs.Add((DeletionIdentifier.ProfileId, profileId));
        }

        var calls = 0;
        int? found = null;
        if (parts.UserId is { } userId)
        {
            var lookup = await LookUpAsync(userId, attempt, clock, cancellationToken).ConfigureAwait(false);
            calls += lookup.Calls;
            if (lookup.Failed is { } failed)
            {
                return failed;
            }
            found = lookup.Ids.Count;
            foreach (var id in lookup.Ids)
            {
                if (!jobs.Contains((DeletionIdentifier.ProfileId, id)))
                {
                    jobs.Add((DeletionIdentifier.ProfileId, id));
                }
            }
        }

        if (jobs.Count == 0)
        {
            // Only a userId, and Klaviyo has no profile with it as external_id: nothing to delete, which is delivered.
            LogNothingFound(logger, messageId);
            return new RelayOutcome.Delivered(calls);
        }
        foreach (var (kind, value) in jobs)
        {
            if (!clock.MayStart(calls))
            {
                return OutcomePolicy.PutOff(attempt, CallClock.OutOfTime);
            }
            var request = KlaviyoCalls.DeletionJob(kind, value);
            var response = await klaviyo.SendAsync(request, cancellationToken).ConfigureAwait(false);
            calls++;
            if (policy.FromAnswer(request, response, attempt) is { } failed)
            {
                return failed;
            }
        }
        LogRequested(logger, messageId, jobs.Count, parts.Email is not null, parts.Phone is not null, parts.ProfileId is not null, found);
        return new RelayOutcome.Delivered(calls);
    }

    /// <summary>The ids of every profile whose external_id is <paramref name="userId"/>, following <c>links.next</c> on
    /// Klaviyo's host only; or the outcome that ends the deletion here.</summary>
    private async Task<(IReadOnlyList<string> Ids, int Calls, RelayOutcome? Failed)> LookUpAsync(string userId, int attempt, CallClock clock, CancellationToken cancellationToken)
    {
        var request = KlaviyoCalls.ProfilesByExternalId(userId);
        var ids = new List<string>();
        var visited = new HashSet<string>(StringComparer.Ordinal);
        for (var page = 1; ; page++)
        {
            if (page > MaxLookupPages)
            {
                return (ids, page - 1, policy.RetryOrGiveUp(null,
                    $"GET {KlaviyoApi.ProfilesPath}: links.next goes on past {MaxLookupPages} pages of {KlaviyoCalls.ProfilesPageSize} profiles for one userId", attempt));
            }
            if (!clock.MayStart(page - 1))
            {
                return (ids, page - 1, OutcomePolicy.PutOff(attempt, CallClock.OutOfTime));
            }
            var response = await klaviyo.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (policy.FromAnswer(request, response, attempt) is { } failed)
            {
                return (ids, page, failed);
            }
            var success = (KlaviyoResponse.Success)response;
            if (success.Unread is { } unread)
            {
                return (ids, page, policy.RetryOrGiveUp(null, $"GET {KlaviyoApi.ProfilesPath} (page {page}) answered {success.StatusCode}, then {unread}", attempt));
            }
            if (ProfilesPage.Parse(success.Body.Span) is not { } read)
            {
                return (ids, page, policy.RetryOrGiveUp(null, $"GET {KlaviyoApi.ProfilesPath} page {page} is not a profiles document (data[] of objects with an id)", attempt));
            }
            ids.AddRange(read.Ids.Where(id => !ids.Contains(id)));
            if (read.Next is null)
            {
                return (ids, page, null);
            }
            if (!NextLinks.TryFollow(read.Next, klaviyoOptions.Value.BaseUrl, KlaviyoApi.ProfilesPath, out var path, out var refused))
            {
                return (ids, page, policy.RetryOrGiveUp(null, $"GET {KlaviyoApi.ProfilesPath} page {page}'s links.next {refused}", attempt));
            }
            if (!visited.Add(path))
            {
                return (ids, page, policy.RetryOrGiveUp(null, $"GET {KlaviyoApi.ProfilesPath} page {page}'s links.next points back at a page already read", attempt));
            }
            request = KlaviyoRequest.Get(KlaviyoEndpoint.GetProfiles, path);
        }
    }

    /// <summary>The time a batch guaranteed this delivery: <see cref="RelayOptions.MaxCallsPerPlan"/> calls at their
    /// <see cref="RelayOptions.CallTimeout"/>. The first calls always go; a later one only when it would end within it.</summary>
    private sealed class CallClock(TimeProvider time, RelayOptions options)
    {
        public const string OutOfTime = "put off: the deletion's further calls would not end within its message lock";

        private readonly long _started = time.GetTimestamp();

        public bool MayStart(int callsMade) =>
            callsMade < RelayOptions.MaxCallsPerPlan
            || time.GetElapsedTime(_started) + options.CallTimeout <= options.CallTimeout * RelayOptions.MaxCallsPerPlan;
    }

    /// <summary>Klaviyo may quote the identifier in an error's detail: the email and phone are replaced by a hash before
    /// a description reaches the log or the dead-letter queue.</summary>
    private static RelayOutcome Redacted(RelayOutcome outcome, DeletionParts parts) => outcome switch
    {
        RelayOutcome.DeadLetter dead => dead with { Description = Redact(dead.Description, parts) },
        RelayOutcome.RetryLater retry => retry with { Cause = Redact(retry.Cause, parts) },
        _ => outcome,
    };

    private static string Redact(string text, DeletionParts parts)
    {
        foreach (var (kind, value) in new[] { ("email", parts.Email), ("phone", parts.Phone) })
        {
            if (!string.IsNullOrEmpty(value))
            {
                text = text.Replace(value, $"[{kind} {Hash(value)}]", StringComparison.OrdinalIgnoreCase);
            }
        }
        return text;
    }

    /// <summary>The first 8 bytes of SHA-256 of the lower-cased value, in hex: enough to match two log lines, not to read.</summary>
    public static string Hash(string value) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value.ToLowerInvariant())).AsSpan(0, 8));

    [LoggerMessage(EventId = 3070, Level = LogLevel.Warning, Message = "Event {MessageId} is a delete event and Privacy__DeleteEvents is false: skipped, nothing deleted")]
    private static partial void LogDeleteEventsOff(ILogger logger, string messageId);

    [LoggerMessage(EventId = 3071, Level = LogLevel.Information, Message = "Deletion {MessageId}: no Klaviyo profile has the userId as external_id, and no other identifier was given; nothing to delete")]
    private static partial void LogNothingFound(ILogger logger, string messageId);

    [LoggerMessage(EventId = 3072, Level = LogLevel.Information,
        Message = "Deletion {MessageId}: {Jobs} deletion job(s) requested (by email: {ByEmail}, by phone: {ByPhone}, by profile id: {ByProfileId}, profiles found for the userId: {FoundForUserId})")]
    private static partial void LogRequested(ILogger logger, string messageId, int jobs, bool byEmail, bool byPhone, bool byProfileId, int? foundForUserId);
}
