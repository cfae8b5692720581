using System.Text.Json;

namespace Klaviyo.Functions.Bulk;

/// <summary>An import job's state as <c>GET /api/profile-bulk-import-jobs/{id}</c> reports it (klaviyo-api-facts 2.5).</summary>
internal abstract record ImportJobState
{
    private ImportJobState() { }

    /// <summary><c>queued</c> or <c>processing</c>.</summary>
    public sealed record Running(string Status) : ImportJobState;

    /// <summary><c>complete</c>; <paramref name="FailedCount"/> profiles are in the job's import errors.</summary>
    public sealed record Complete(int? FailedCount) : ImportJobState;

    /// <summary><c>cancelled</c> or failed: every message of the job retries later.</summary>
    public sealed record Ended(string Status) : ImportJobState;

    /// <summary>Not a job status Klaviyo documents: never read as complete; the job's messages retry later.</summary>
    public sealed record Unreadable(string Reason) : ImportJobState;
}

/// <summary>One entry of <c>GET …/{id}/import-errors</c>: where it points and Klaviyo's words for it.</summary>
internal sealed record ImportError(int? ProfileIndex, string? IdentityKey, string Description);

/// <summary>One page of import errors; <paramref name="Next"/> is the next page's link, if any.</summary>
internal sealed record ImportErrorsPage(IReadOnlyList<ImportError> Errors, string? Next);

/// <summary>
/// Reads import job answers and settles the job's messages (spec 8.3): a message is delivered only when the job is
/// <c>complete</c> and none of its profiles is among the import errors; a profile in the errors dead-letters its
/// messages <c>KlaviyoRejected</c> with Klaviyo's detail; a cancelled or failed job, an answer that cannot be read,
/// or an error that cannot be tied to a profile retries the messages concerned later, never completes them.
/// </summary>
internal static class ImportJobAnswer
{
    private const string ProfilePrefix = "/data/attributes/profiles/data/";

    /// <summary>Reads a job status document (<c>{"data":{"type":"profile-bulk-import-job","id":…,"attributes":{"status":…}}}</c>).</summary>
    public static ImportJobState ParseStatus(ReadOnlySpan<byte> body)
    {
        try
        {
            using var document = JsonDocument.Parse(body.ToArray());
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object
                || !data.TryGetProperty("attributes", out var attributes) || attributes.ValueKind != JsonValueKind.Object
                || !attributes.TryGetProperty("status", out var statusElement) || statusElement.ValueKind != JsonValueKind.String)
            {
                return new ImportJobState.Unreadable("the job answer has no data.attributes.status string");
            }
            var status = statusElement.GetString()!;
            int? failed = attributes.TryGetProperty("failed_count", out var f) && f.ValueKind == JsonValueKind.Number && f.TryGetInt32(out var n) && n >= 0 ? n : null;
            return status switch
            {
                "queued" or "processing" => new ImportJobState.Running(status),
                "complete" => new ImportJobState.Complete(failed),
                "cancelled" or "failed" => new ImportJobState.Ended(status),
                _ => new ImportJobState.Unreadable($"unknown job status '{Truncate(status)}'"),
            };
        }
        catch (JsonException ex)
        {
            return new ImportJobState.Unreadable($"the job answer is not JSON ({ex.Message})");
        }
    }

    /// <summary>Reads one page of <c>GetImportErrorResponseCollection</c>; null when it is not that shape.</summary>
    public static ImportErrorsPage? ParseErrors(ReadOnlySpan<byte> body)
    {
        try
        {
            using var document = JsonDocument.Parse(body.ToArray());
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
            {
                return null;
            }
            var errors = new List<ImportError>();
            foreach (var item in data.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("attributes", out var attributes) || attributes.ValueKind != JsonValueKind.Object)
                {
                    return null;
                }
                var code = BulkJson.String(attributes, "code");
                var detail = BulkJson.String(attributes, "detail") ?? BulkJson.String(attributes, "title");
                var pointer = attributes.TryGetProperty("source", out var source) ? BulkJson.String(source, "pointer") : null;
                int? index = pointer is not null && pointer.StartsWith(ProfilePrefix, StringComparison.Ordinal)
                    && int.TryParse(pointer[ProfilePrefix.Length..].Split('/')[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k) ? k : null;
                string? identity = null;
                if (attributes.TryGetProperty("original_payload", out var payload) && payload.ValueKind == JsonValueKind.Object)
                {
                    identity = payload.TryGetProperty("attributes", out _) ? BulkJson.IdentityKey(payload) : IdentityOfAttributes(payload);
                }
                var description = string.Join(": ", new[] { code, detail }.Where(s => !string.IsNullOrEmpty(s)));
                if (pointer is not null)
                {
                    description += $" (pointer {pointer})";
                }
                errors.Add(new ImportError(index, identity, description.Length == 0 ? "import error without detail" : description));
            }
            var next = document.RootElement.TryGetProperty("links", out var links) ? BulkJson.String(links, "next") : null;
            return new ImportErrorsPage(errors, string.IsNullOrEmpty(next) ? null : next);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// The verdict for every item (profile) of the job <paramref name="ticket"/> tracks, in item order, given its state and
    /// (once complete) all its import errors; <paramref name="errors"/> null means they could not be read, which settles
    /// nothing as delivered. An error is tied to an item by its <c>source.pointer</c> index, else by the identity of its
    /// <c>original_payload</c> when exactly one item has it.
    /// </summary>
    public static IReadOnlyList<BulkVerdict> Settle(JobTicket ticket, ImportJobState state, IReadOnlyList<ImportError>? errors)
    {
        var job = $"import job {ticket.JobId} of POST {ticket.Path}";
        switch (state)
        {
            case ImportJobState.Running:
                return Each(ticket, new BulkVerdict.Pending());
            case ImportJobState.Ended ended:
                return Each(ticket, new BulkVerdict.RetryLater(null, $"{job} ended '{ended.Status}'"));
            case ImportJobState.Unreadable unreadable:
                return Each(ticket, new BulkVerdict.RetryLater(null, $"{job}: {unreadable.Reason}"));
        }
        if (errors is null)
        {
            return Each(ticket, new BulkVerdict.RetryLater(null, $"{job}: its import errors could not be read"));
        }

        var byIdentity = ticket.Items.Select((item, k) => (item.Identity, k)).ToLookup(p => p.Identity, p => p.k);
        var refused = new Dictionary<int, List<string>>();
        var unattributed = new List<string>();
        foreach (var error in errors)
        {
            var item = error.ProfileIndex is { } k && k < ticket.Items.Count ? k
                : error.IdentityKey is { } key && byIdentity[JobTicket.IdentityHash(key)].ToList() is [var only] ? only : -1;
            if (item < 0)
            {
                unattributed.Add(error.Description);
                continue;
            }
            if (!refused.TryGetValue(item, out var details))
            {
                refused[item] = details = [];
            }
            details.Add(error.Description);
        }
        var failedCount = ((ImportJobState.Complete)state).FailedCount;
        // Errors Klaviyo counted but that cannot be tied to a profile leave every other profile unconfirmed.
        var unconfirmed = unattributed.Count > 0 || (failedCount is { } failed && failed > refused.Count);
        var verdicts = new BulkVerdict[ticket.Items.Count];
        for (var item = 0; item < verdicts.Length; item++)
        {
            verdicts[item] = refused.TryGetValue(item, out var details)
                ? new BulkVerdict.DeadLetter(BulkRefusal.KlaviyoRejected, $"{job}: " + string.Join("; ", details))
                : unconfirmed
                    ? new BulkVerdict.RetryLater(null, $"{job} reported {failedCount?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "some"} failed profile(s) not all tied to a profile"
                        + (unattributed.Count > 0 ? ": " + unattributed[0] : ""))
                    : new BulkVerdict.Delivered();
        }
        return verdicts;
    }

    /// <summary>The same verdict for every item of the job.</summary>
    public static IReadOnlyList<BulkVerdict> Each(JobTicket ticket, BulkVerdict verdict) => Enumerable.Repeat(verdict, ticket.Items.Count).ToArray();

    private static string IdentityOfAttributes(JsonElement attributes)
    {
        using var wrapped = JsonDocument.Parse("{\"attributes\":" + attributes.GetRawText() + "}");
        return BulkJson.IdentityKey(wrapped.RootElement);
    }

    private static string Truncate(string value) => value.Length <= 40 ? value : string.Concat(value.AsSpan(0, 40), "…");
}
