using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using Klaviyo.Functions.Events;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Ingest;

/// <summary>What validation of one request decided: every event ready for the queue, or a problem refusing all of them.</summary>
internal abstract record ValidationOutcome
{
    private ValidationOutcome() { }

    public sealed record Valid(IReadOnlyList<QueuedEvent> Events) : ValidationOutcome;

    public sealed record Refused(ValidationProblem Problem) : ValidationOutcome;
}

/// <summary>
/// Splits a request body into events and decides, all or nothing, whether they may be enqueued (spec section 7).
/// The body is parsed once; each event is checked where it lies by the relay's own <see cref="KlaviyoTransformer"/>
/// (<see cref="KlaviyoTransformer.CheckBeforeIngest"/>: every permanent check, no request built), so an event that
/// could only ever be dead-lettered <c>InvalidEvent</c> is refused at the door instead. Only a request that is
/// accepted is written out the way it will be queued (type from the route, <c>messageId</c>, <c>receivedAt</c>).
/// </summary>
internal sealed partial class EventValidator(KlaviyoTransformer transformer, IOptions<IngestOptions> options, ILogger<EventValidator>? logger = null)
{
    public const int MaxMessageIdLength = 128;

    private const string ShapeHint = "send an event object, an array of events or {\"batch\": [...]}";

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonDocumentOptions ReaderOptions = new() { MaxDepth = 64 };

    /// <summary>
    /// Decides a request body. Bad input is refused 400 (or 413); an exception in these checks is a bug in the relay,
    /// answered 500 with nothing enqueued and logged, never blamed on the sender (spec section 6).
    /// </summary>
    public ValidationOutcome Validate(ReadOnlyMemory<byte> body, EventType? routeType, DateTimeOffset receivedAt)
    {
        try
        {
            return ValidateBody(body, routeType, receivedAt);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            LogBug(logger ?? NullLogger<EventValidator>.Instance, ex);
            return new ValidationOutcome.Refused(InternalError);
        }
    }

    /// <summary>The answer to a request the relay could not check because of a bug in its own code.</summary>
    public static readonly ValidationProblem InternalError = new(
        "urn:klaviyo-relay:problem:internal-error", "The relay failed while checking the events", 500,
        "An unexpected error in the relay (not a problem with the events); nothing was enqueued and the error is logged. Send the request again later.", []);

    [LoggerMessage(EventId = 4090, Level = LogLevel.Error, Message = "Ingest hit a bug in the relay's own checks; answered 500, nothing enqueued")]
    private static partial void LogBug(ILogger logger, Exception exception);

    private ValidationOutcome ValidateBody(ReadOnlyMemory<byte> body, EventType? routeType, DateTimeOffset receivedAt)
    {
        if (body.Span.StartsWith("\uFEFF"u8))
        {
            body = body[3..];
        }
        if (body.Span.Trim(" \t\r\n"u8).IsEmpty)
        {
            return Refuse(new ProblemError(null, null, "", $"the body is empty: {ShapeHint}"));
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, ReaderOptions);
        }
        catch (JsonException ex)
        {
            return Refuse(new ProblemError(null, null, "",
                $"malformed JSON at line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}: {ex.Message.Split(" LineNumber:")[0]}"));
        }

        using (document)
        {
            if (!TryGetEvents(document.RootElement, out var events, out var shapeError))
            {
                return Refuse(shapeError);
            }
            return ValidateEvents(events, routeType, EventTimestamp.Format(receivedAt), receivedAt.ToUnixTimeMilliseconds());
        }
    }

    private static bool TryGetEvents(JsonElement root, out List<JsonElement> events, out ProblemError error)
    {
        events = [];
        error = null!;
        JsonElement list;
        string field;
        switch (root.ValueKind)
        {
            case JsonValueKind.Array:
                list = root;
                field = "";
                break;
            case JsonValueKind.Object when root.TryGetProperty("batch", out var batch) && !root.TryGetProperty("type", out _):
                if (batch.ValueKind != JsonValueKind.Array)
                {
                    error = new ProblemError(null, null, "batch", "batch must be an array of events");
                    return false;
                }
                list = batch;
                field = "batch";
                break;
            case JsonValueKind.Object:
                events.Add(root);
                return true;
            default:
                error = new ProblemError(null, null, "", $"the body is {Describe(root.ValueKind)}: {ShapeHint}");
                return false;
        }

        foreach (var element in list.EnumerateArray())
        {
            events.Add(element);
        }
        if (events.Count == 0)
        {
            error = new ProblemError(null, null, field, field.Length == 0 ? "the array holds no events" : "batch holds no events");
            return false;
        }
        return true;
    }

    private ValidationOutcome ValidateEvents(List<JsonElement> events, EventType? routeType, string receivedAt, long receivedAtMs)
    {
        var maxEventBytes = options.Value.MaxEventBytes;
        var errors = new ProblemList();
        var tooLarge = new ProblemList();
        var queued = new List<QueuedEvent>(events.Count);
        var seen = new Dictionary<string, int>(events.Count, StringComparer.Ordinal);

        for (var index = 0; index < events.Count; index++)
        {
            var element = events[index];
            if (element.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new ProblemError(index, null, "", $"an event must be a JSON object, not {Describe(element.ValueKind)}"));
                continue;
            }

            var messageId = ReadMessageId(element, index, errors);

            var size = JsonMarshal.GetRawUtf8Value(element).Length;
            if (size > maxEventBytes)
            {
                tooLarge.Add(new ProblemError(index, messageId, "", $"the event is {size} bytes of UTF-8 JSON; the limit is {maxEventBytes}"));
                continue;
            }

            if (messageId is not null && !seen.TryAdd(messageId, index))
            {
                errors.Add(new ProblemError(index, messageId, "messageId", $"messageId '{messageId}' is already used by event {seen[messageId]} of this request"));
            }

            if (!TryReadType(element, routeType, index, messageId, errors, out var type, out var injectType))
            {
                continue;
            }

            // The relay's permanent errors (spec sections 4–5) under current settings, checked on the parsed event
            // itself: the same mapping code as the relay's, without building a request.
            if (transformer.CheckBeforeIngest(element, type) is { } problem)
            {
                errors.Add(problem switch
                {
                    TransformResult.Invalid invalid => new ProblemError(index, messageId, invalid.Field, invalid.Rule),
                    TransformResult.Malformed malformed => new ProblemError(index, messageId, "", malformed.Reason),
                    _ => throw new InvalidOperationException($"Unexpected check result {problem.GetType().Name}."),
                });
                continue;
            }
            // Once the request is refused nothing is queued, so nothing more is written.
            if (errors.Count == 0 && tooLarge.Count == 0)
            {
                var effectiveId = messageId ?? Guid.NewGuid().ToString();
                // The ordering key is fixed here, once, and every copy of the message keeps it (spec 10).
                var ordering = transformer.OrderingKeyOf(element, type) is { } key ? new OrderingStamp(key, receivedAtMs) : null;
                queued.Add(new QueuedEvent(effectiveId, type.WireName(), WriteQueuedEvent(element, injectType ? type.WireName() : null, effectiveId, receivedAt), Ordering: ordering));
            }
        }

        if (tooLarge.Count > 0)
        {
            return new ValidationOutcome.Refused(ValidationProblem.EventsTooLarge(maxEventBytes, tooLarge));
        }
        if (errors.Count > 0)
        {
            return new ValidationOutcome.Refused(ValidationProblem.InvalidEvents(errors));
        }
        return new ValidationOutcome.Valid(queued);
    }

    /// <summary>The event's own messageId (a number is kept as its JSON text); null when absent or invalid.</summary>
    private static string? ReadMessageId(JsonElement element, int index, ProblemList errors)
    {
        if (!element.TryGetProperty("messageId", out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        string? id = value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            _ => null,
        };
        if (id is null)
        {
            errors.Add(new ProblemError(index, null, "messageId", $"messageId must be a string or a number, not {Describe(value.ValueKind)}"));
            return null;
        }
        if (id.Length is 0 or > MaxMessageIdLength)
        {
            errors.Add(new ProblemError(index, null, "messageId", $"messageId must be 1 to {MaxMessageIdLength} characters long, not {id.Length}"));
            return null;
        }
        if (id.Any(char.IsControl))
        {
            errors.Add(new ProblemError(index, null, "messageId", "messageId must not contain control characters (retry copies' ids use them, so no messageId can equal one)"));
            return null;
        }
        return id;
    }

    private static bool TryReadType(JsonElement element, EventType? routeType, int index, string? messageId, ProblemList errors, out EventType type, out bool injectType)
    {
        injectType = false;
        type = default;
        if (!element.TryGetProperty("type", out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (routeType is { } fromRoute)
            {
                type = fromRoute;
                injectType = true;
                return true;
            }
            errors.Add(new ProblemError(index, messageId, "type", $"type is required: one of {EventTypes.NameList}"));
            return false;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            errors.Add(new ProblemError(index, messageId, "type", $"type must be a string, one of {EventTypes.NameList}"));
            return false;
        }
        if (!EventTypes.TryParse(value, out type))
        {
            errors.Add(new ProblemError(index, messageId, "type", $"'{value.GetString()}' is not one of {EventTypes.NameList}"));
            return false;
        }
        if (routeType is { } route && route != type)
        {
            errors.Add(new ProblemError(index, messageId, "type", $"type '{value.GetString()}' disagrees with the route /api/v1/{route.WireName()}"));
            return false;
        }
        return true;
    }

    /// <summary>The queue body: the event as sent, with <c>type</c> (when the route gave it), <c>messageId</c> and
    /// <c>receivedAt</c> written last (a client-sent <c>receivedAt</c> is replaced: it is the ingest's stamp).</summary>
    private static byte[] WriteQueuedEvent(JsonElement element, string? type, string messageId, string receivedAt)
    {
        var buffer = new ArrayBufferWriter<byte>(JsonMarshal.GetRawUtf8Value(element).Length + 128);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            foreach (var property in element.EnumerateObject())
            {
                if (property.NameEquals(KlaviyoTransformer.MessageIdField) || property.NameEquals(KlaviyoTransformer.ReceivedAtField) || (type is not null && property.NameEquals("type")))
                {
                    continue;
                }
                // Copied as sent: the value's bytes verbatim (no unescape and escape again), the name likewise unless escaped.
                var rawName = JsonMarshal.GetRawUtf8PropertyName(property);
                if (rawName.IndexOf((byte)'\\') < 0)
                {
                    writer.WritePropertyName(rawName);
                }
                else
                {
                    writer.WritePropertyName(property.Name);
                }
                writer.WriteRawValue(JsonMarshal.GetRawUtf8Value(property.Value), skipInputValidation: true);
            }
            if (type is not null)
            {
                writer.WriteString("type", type);
            }
            writer.WriteString(KlaviyoTransformer.MessageIdField, messageId);
            writer.WriteString(KlaviyoTransformer.ReceivedAtField, receivedAt);
            writer.WriteEndObject();
        }
        var body = buffer.WrittenSpan.ToArray();
        // Spec section 7: a lone surrogate escape is accepted as U+FFFD.
        LoneSurrogates.Replace(body);
        return body;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "an object",
    };

    private static ValidationOutcome Refuse(ProblemError error) =>
        new ValidationOutcome.Refused(ValidationProblem.InvalidEvents([error]));
}
