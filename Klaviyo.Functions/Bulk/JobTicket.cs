using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Klaviyo;

namespace Klaviyo.Functions.Bulk;

/// <summary>One profile of an import job: a hash of its identifiers and the queue messages it carries.</summary>
/// <param name="Identity"><see cref="JobTicket.IdentityHash"/> of the profile's identifiers (no email or phone is stored).</param>
/// <param name="Sequences">The sequence numbers of the queue messages merged into this profile (spec 8.3).</param>
internal sealed record JobTicketItem(string Identity, IReadOnlyList<long> Sequences);

/// <summary>
/// What a tracker message carries about one <c>profile-bulk-import-jobs</c> job (spec 8.3): the job id, where it came
/// from, when, how often it has been polled, and one item per profile of the job's <c>profiles.data</c>, in order, so
/// that every import error (by <c>source.pointer</c> index or by <c>original_payload</c> identity) settles exactly the
/// messages of its profile. Compact UTF-8 JSON: about 90 bytes an item, so a batch-sized job fits a Service Bus message.
/// </summary>
internal sealed record JobTicket(string JobId, string Path, DateTimeOffset CreatedAt, int Polls, IReadOnlyList<JobTicketItem> Items)
{
    /// <summary>Klaviyo's most profiles per import job (klaviyo-api-facts 2.5); a ticket never holds more.</summary>
    public const int MaxItems = BulkLimits.MaxProfilesPerImportJob;

    /// <summary>Most sequence numbers in one ticket: a job is built from one batch, far smaller than this.</summary>
    public const int MaxSequences = 100_000;

    /// <summary>Most bytes <see cref="TryParse"/> reads: well past any ticket of <see cref="MaxItems"/> items.</summary>
    public const int MaxBytes = 4 * 1024 * 1024;

    private const int IdentityLength = 12;
    private const int MaxTextLength = 1024;

    /// <summary>The ticket for the job Klaviyo created (id <paramref name="jobId"/>) by a POST to <paramref name="path"/>,
    /// whose <c>profiles.data[k]</c> has the identifiers <paramref name="identityKeys"/>[k] (as the transform wrote them,
    /// <see cref="Transform.ProfilePart.IdentityText"/>) and carries the messages <paramref name="sequencesPerItem"/>[k].</summary>
    /// <exception cref="ArgumentException">The counts differ, or an identity is missing (a bug).</exception>
    public static JobTicket ForJob(string path, string jobId, IReadOnlyList<string?> identityKeys, IReadOnlyList<IReadOnlyList<long>> sequencesPerItem, DateTimeOffset createdAt)
    {
        ArgumentException.ThrowIfNullOrEmpty(jobId);
        if (identityKeys.Count != sequencesPerItem.Count)
        {
            throw new ArgumentException(
                $"The job carries {identityKeys.Count} profiles but {sequencesPerItem.Count} sequence lists were given.", nameof(sequencesPerItem));
        }
        var items = identityKeys
            .Select((key, k) => new JobTicketItem(IdentityHash(key ?? throw new ArgumentException($"Profile {k} of the job has no identity.", nameof(identityKeys))), sequencesPerItem[k].ToArray()))
            .ToArray();
        return new JobTicket(jobId, path, createdAt, 0, items);
    }

    /// <summary>The first 12 base64url characters (72 bits) of the SHA-256 of <see cref="BulkJson.IdentityKey"/>: stable,
    /// short, and enough to tell a job's profiles apart without keeping their emails or phone numbers.</summary>
    public static string IdentityHash(string identityKey)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(identityKey), hash);
        return Base64Url.EncodeToString(hash[..9]); // 9 bytes = exactly 12 characters
    }

    /// <summary>The same ticket, polled once more.</summary>
    public JobTicket Polled() => this with { Polls = Polls + 1 };

    /// <summary>The same ticket carrying only <paramref name="sequences"/>; every item keeps its place (Klaviyo's error
    /// indices point into the job's profiles).</summary>
    public JobTicket Keeping(IReadOnlySet<long> sequences) =>
        this with { Items = Items.Select(i => i with { Sequences = i.Sequences.Where(sequences.Contains).ToArray() }).ToArray() };

    /// <summary>The sequence numbers a body that <see cref="TryParse"/> refuses still names (<c>items[*].sequences[*]</c>,
    /// whole numbers 0 or more, at most <see cref="MaxSequences"/>), so the messages it parked are not left behind with it.</summary>
    public static IReadOnlyList<long> Salvage(ReadOnlySpan<byte> utf8)
    {
        var found = new HashSet<long>();
        if (utf8.Length > MaxBytes)
        {
            return [];
        }
        try
        {
            using var document = JsonDocument.Parse(utf8.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
            if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("items", out var items) || items.ValueKind != JsonValueKind.Array)
            {
                return [];
            }
            foreach (var item in items.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("sequences", out var sequences) || sequences.ValueKind != JsonValueKind.Array)
                {
                    continue;
                }
                foreach (var sequence in sequences.EnumerateArray())
                {
                    if (sequence.ValueKind == JsonValueKind.Number && sequence.TryGetInt64(out var value) && value >= 0 && found.Count < MaxSequences)
                    {
                        found.Add(value);
                    }
                }
            }
        }
        catch (JsonException)
        {
            return [];
        }
        return [.. found.Order()];
    }

    public byte[] Serialize() => BulkJson.Write(w =>
    {
        w.WriteStartObject();
        w.WriteString("jobId", JobId);
        w.WriteString("path", Path);
        w.WriteString("createdAt", CreatedAt.ToString("O", CultureInfo.InvariantCulture));
        w.WriteNumber("polls", Polls);
        w.WritePropertyName("items");
        w.WriteStartArray();
        foreach (var item in Items)
        {
            w.WriteStartObject();
            w.WriteString("identity", item.Identity);
            w.WritePropertyName("sequences");
            w.WriteStartArray();
            foreach (var sequence in item.Sequences)
            {
                w.WriteNumberValue(sequence);
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }, 64 + (Items.Count * 64));

    /// <summary>Reads a ticket; false, with <paramref name="error"/> naming the field and the rule, for anything else.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, out JobTicket? ticket, out string error)
    {
        ticket = null;
        if (utf8.Length > MaxBytes)
        {
            error = $"ticket: {utf8.Length} bytes, over the {MaxBytes} a ticket may have";
            return false;
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            error = $"ticket: not JSON ({e.Message})";
            return false;
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = "ticket: must be a JSON object";
                return false;
            }
            if (!Text(root, "jobId", out var jobId, out error) || !Text(root, "path", out var path, out error))
            {
                return false;
            }
            if (!path.StartsWith('/'))
            {
                error = "path: must start with '/'";
                return false;
            }
            if (!Text(root, "createdAt", out var createdText, out error))
            {
                return false;
            }
            if (!DateTimeOffset.TryParseExact(createdText, "O", CultureInfo.InvariantCulture, DateTimeStyles.None, out var createdAt))
            {
                error = "createdAt: must be a round-trip (ISO 8601 \"O\") date and time";
                return false;
            }
            if (!root.TryGetProperty("polls", out var pollsElement) || pollsElement.ValueKind != JsonValueKind.Number
                || !pollsElement.TryGetInt32(out var polls) || polls < 0)
            {
                error = "polls: must be a whole number, 0 or more";
                return false;
            }
            if (!root.TryGetProperty("items", out var itemsElement) || itemsElement.ValueKind != JsonValueKind.Array)
            {
                error = "items: must be an array";
                return false;
            }
            var count = itemsElement.GetArrayLength();
            if (count is 0 or > MaxItems)
            {
                error = $"items: must hold 1 to {MaxItems} items, not {count}";
                return false;
            }
            var items = new JobTicketItem[count];
            var seen = new HashSet<long>();
            var k = 0;
            foreach (var itemElement in itemsElement.EnumerateArray())
            {
                if (!Item(itemElement, k, seen, out items[k], out error))
                {
                    return false;
                }
                k++;
            }
            if (seen.Count == 0)
            {
                error = "items: no item carries a sequence number";
                return false;
            }
            ticket = new JobTicket(jobId, path, createdAt, polls, items);
            error = "";
            return true;
        }
    }

    private static bool Item(JsonElement element, int k, HashSet<long> seen, out JobTicketItem item, out string error)
    {
        item = null!;
        var at = $"items[{k}]";
        if (element.ValueKind != JsonValueKind.Object)
        {
            error = $"{at}: must be an object";
            return false;
        }
        if (!element.TryGetProperty("identity", out var identityElement) || identityElement.ValueKind != JsonValueKind.String
            || identityElement.GetString() is not { Length: IdentityLength } identity || !IsBase64Url(identity))
        {
            error = $"{at}.identity: must be {IdentityLength} base64url characters";
            return false;
        }
        // May be empty: a profile of the job whose messages were settled before it started (their subscription call
        // failed, so they retry as a whole) keeps its place, so Klaviyo's error indices still name the right item.
        if (!element.TryGetProperty("sequences", out var sequencesElement) || sequencesElement.ValueKind != JsonValueKind.Array)
        {
            error = $"{at}.sequences: must be an array";
            return false;
        }
        var sequences = new long[sequencesElement.GetArrayLength()];
        var j = 0;
        foreach (var sequenceElement in sequencesElement.EnumerateArray())
        {
            if (sequenceElement.ValueKind != JsonValueKind.Number || !sequenceElement.TryGetInt64(out var sequence) || sequence < 0)
            {
                error = $"{at}.sequences[{j}]: must be a whole number, 0 or more";
                return false;
            }
            if (!seen.Add(sequence))
            {
                error = $"{at}.sequences[{j}]: {sequence} appears more than once in the ticket";
                return false;
            }
            if (seen.Count > MaxSequences)
            {
                error = $"items: more than {MaxSequences} sequence numbers in all";
                return false;
            }
            sequences[j++] = sequence;
        }
        item = new JobTicketItem(identity, sequences);
        error = "";
        return true;
    }

    private static bool Text(JsonElement root, string name, out string value, out string error)
    {
        value = "";
        if (!root.TryGetProperty(name, out var element) || element.ValueKind != JsonValueKind.String || element.GetString() is not { Length: > 0 } text)
        {
            error = $"{name}: must be a non-empty string";
            return false;
        }
        if (text.Length > MaxTextLength)
        {
            error = $"{name}: longer than {MaxTextLength} characters";
            return false;
        }
        value = text;
        error = "";
        return true;
    }

    private static bool IsBase64Url(string text) =>
        text.All(c => c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_');
}
