using System.Buffers;
using System.Text.Json;
using Klaviyo.Functions.Events;
using Klaviyo.Functions.Ingest;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Privacy;

/// <summary>
/// <c>POST /api/privacy/deletions</c> (spec 11): <c>{"requests": [{"userId"?, "email"?, "phone"?, "profileId"?}]}</c>,
/// 1–100 requests, each with at least one identifier. All or nothing, like the ingest: every request is queued as one
/// deletion message (a <c>delete</c> event marked as the admin route's, so it is delivered whatever
/// <c>Privacy__DeleteEvents</c> says), or none is and the answer is a problem naming <c>requests[i]</c>.
/// </summary>
internal sealed partial class DeletionRequestHandler(
    KlaviyoTransformer transformer,
    IEventQueue queue,
    IOptions<IngestOptions> ingestOptions,
    TimeProvider time,
    ILogger<DeletionRequestHandler> logger)
{
    public const int MaxRequests = 100;

    /// <summary>A hundred requests of four identifiers fit many times over.</summary>
    public const int MaxBodyBytes = 256 * 1024;

    private const string ProblemType = "urn:klaviyo-relay:problem:invalid-deletion-requests";

    private static readonly string[] s_fields = ["userId", "email", "phone", "profileId"];

    private static readonly string s_shape = "send {\"requests\": [{\"userId\"?, \"email\"?, \"phone\"?, \"profileId\"?}]} with 1–" + MaxRequests + " requests";

    public async Task<IngestResult> HandleAsync(Stream body, CancellationToken cancellationToken)
    {
        var bytes = await ReadAsync(body, cancellationToken).ConfigureAwait(false);
        if (bytes is null)
        {
            return IngestResult.Problem(new ValidationProblem(ProblemType, "The deletion request is too large", 413,
                $"The body is larger than {MaxBodyBytes} bytes; send at most {MaxRequests} requests at a time.", []));
        }

        var errors = new List<ProblemError>();
        var events = new List<QueuedEvent>();
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException ex)
        {
            return Refuse([new ProblemError(null, null, "", $"malformed JSON: {ex.Message.Split(" LineNumber:")[0]}")]);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("requests", out var requests) || requests.ValueKind != JsonValueKind.Array)
            {
                return Refuse([new ProblemError(null, null, "requests", $"requests must be an array: {s_shape}")]);
            }
            var count = requests.GetArrayLength();
            if (count is 0 or > MaxRequests)
            {
                return Refuse([new ProblemError(null, null, "requests", $"requests holds {count} request(s); {s_shape}")]);
            }
            var receivedAt = EventTimestamp.Format(time.GetUtcNow());
            var index = 0;
            foreach (var request in requests.EnumerateArray())
            {
                if (ToEvent(request, index, receivedAt, errors) is { } queued)
                {
                    events.Add(queued);
                }
                index++;
            }
        }
        if (errors.Count > 0)
        {
            return Refuse(errors);
        }

        try
        {
            await queue.SendAsync(events, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IngestHandler.IsQueueFailure(ex, cancellationToken))
        {
            LogQueueFailed(logger, ex.GetType().Name);
            return IngestResult.Problem(ValidationProblem.QueueUnavailable(), ingestOptions.Value.RetryAfter);
        }
        LogQueued(logger, events.Count);
        return IngestResult.Accepted([.. events.Select(e => e.MessageId)]);
    }

    /// <summary>The deletion message of one request, or null with its problems added (never the values themselves).</summary>
    private QueuedEvent? ToEvent(JsonElement request, int index, string receivedAt, List<ProblemError> errors)
    {
        var at = $"requests[{index}]";
        if (request.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new ProblemError(index, null, at, "a request must be an object with userId, email, phone or profileId"));
            return null;
        }
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var before = errors.Count;
        foreach (var property in request.EnumerateObject())
        {
            if (!s_fields.Contains(property.Name, StringComparer.Ordinal))
            {
                errors.Add(new ProblemError(index, null, $"{at}.{LogTextCut(property.Name)}", "is not one of userId, email, phone, profileId"));
            }
            else if (property.Value.ValueKind == JsonValueKind.Null)
            {
                continue;
            }
            else if (property.Value.ValueKind != JsonValueKind.String || property.Value.GetString()!.Trim().Length == 0)
            {
                errors.Add(new ProblemError(index, null, $"{at}.{property.Name}", "must be a non-empty string"));
            }
            else
            {
                values[property.Name] = property.Value.GetString()!.Trim();
            }
        }
        if (values.TryGetValue("phone", out var phone))
        {
            if (PhoneNormalizer.ToE164(phone) is { } e164)
            {
                values["phone"] = e164;
            }
            else
            {
                errors.Add(new ProblemError(index, null, $"{at}.phone", "is not a phone number in E.164 form (+ and 8–15 digits)"));
            }
        }
        if (values.TryGetValue("email", out var email) && !email.Contains('@', StringComparison.Ordinal))
        {
            errors.Add(new ProblemError(index, null, $"{at}.email", "is not an email address"));
        }
        if (errors.Count == before && values.Count == 0)
        {
            errors.Add(new ProblemError(index, null, at, "needs at least one identifier: userId, email, phone or profileId"));
        }
        if (errors.Count > before)
        {
            return null;
        }

        var messageId = Guid.NewGuid().ToString();
        var body = Write(values, messageId, receivedAt);
        using (var written = JsonDocument.Parse(body))
        {
            // The relay's own reading of the message: what it would refuse is refused here.
            if (transformer.Check(written.RootElement) is TransformResult.Invalid invalid)
            {
                errors.Add(new ProblemError(index, null, at, $"{invalid.Field}: {invalid.Rule}"));
                return null;
            }
        }
        return new QueuedEvent(messageId, EventType.Delete.WireName(), body);
    }

    private static byte[] Write(Dictionary<string, string> values, string messageId, string receivedAt)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", EventType.Delete.WireName());
            w.WriteString(KlaviyoTransformer.MessageIdField, messageId);
            w.WriteString(KlaviyoTransformer.ReceivedAtField, receivedAt);
            w.WriteBoolean(DeleteMapping.AdminRequestField, true);
            if (values.TryGetValue("userId", out var userId))
            {
                w.WriteString("userId", userId);
            }
            if (values.ContainsKey("email") || values.ContainsKey("phone"))
            {
                w.WriteStartObject("traits");
                if (values.TryGetValue("email", out var email))
                {
                    w.WriteString("email", email);
                }
                if (values.TryGetValue("phone", out var phone))
                {
                    w.WriteString("phone", phone);
                }
                w.WriteEndObject();
            }
            if (values.TryGetValue("profileId", out var profileId))
            {
                // Where RudderStack's destinations carry a Klaviyo profile id, read by the same transform.
                w.WriteStartObject("context");
                w.WriteStartArray("externalId");
                w.WriteStartObject();
                w.WriteString("type", "klaviyo-profileId");
                w.WriteString("id", profileId);
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static IngestResult Refuse(IReadOnlyList<ProblemError> errors)
    {
        var listed = errors.Take(ProblemList.MaxListed).ToList();
        return IngestResult.Problem(new ValidationProblem(ProblemType, "The deletion requests are invalid", 400,
            $"{errors.Count} problem(s) found; nothing was queued. {s_shape}, each with at least one identifier.", listed)
        {
            ErrorsNotListed = errors.Count - listed.Count,
        });
    }

    private static async Task<byte[]?> ReadAsync(Stream body, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                return null;
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    private static string LogTextCut(string name) => name.Length <= 40 ? name : string.Concat(name.AsSpan(0, 40), "…");

    [LoggerMessage(EventId = 3073, Level = LogLevel.Information, Message = "Privacy route queued {Count} deletion request(s)")]
    private static partial void LogQueued(ILogger logger, int count);

    [LoggerMessage(EventId = 3074, Level = LogLevel.Warning, Message = "Privacy route could not queue the deletion requests ({ExceptionType}); answered 503")]
    private static partial void LogQueueFailed(ILogger logger, string exceptionType);
}
