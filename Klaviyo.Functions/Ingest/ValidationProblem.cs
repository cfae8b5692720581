using System.Text.Json;
using System.Text.Json.Serialization;

namespace Klaviyo.Functions.Ingest;

/// <summary>One problem of a refused request. <see cref="Index"/> is the event's position (a single-object body is 0);
/// null for a problem with the request as a whole (malformed JSON, an empty batch).</summary>
internal sealed record ProblemError(
    [property: JsonPropertyName("index")] int? Index,
    [property: JsonPropertyName("messageId")] string? MessageId,
    [property: JsonPropertyName("field")] string Field,
    [property: JsonPropertyName("message")] string Message);

/// <summary>An RFC 9457 problem document (<c>application/problem+json</c>) with the relay's <c>errors</c> extension.</summary>
internal sealed record ValidationProblem(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("title")] string Title,
    [property: JsonPropertyName("status")] int Status,
    [property: JsonPropertyName("detail")] string Detail,
    [property: JsonPropertyName("errors")] IReadOnlyList<ProblemError> Errors)
{
    /// <summary>Problems found beyond the <see cref="ProblemList.MaxListed"/> listed in <see cref="Errors"/>; absent when 0.</summary>
    [JsonPropertyName("errorsNotListed")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int ErrorsNotListed { get; init; }

    public const string ContentType = "application/problem+json";

    private const string TypePrefix = "urn:klaviyo-relay:problem:";

    public static ValidationProblem InvalidEvents(IReadOnlyList<ProblemError> errors) => InvalidEvents(Bounded(errors));

    public static ValidationProblem InvalidEvents(ProblemList errors) => new(
        TypePrefix + "invalid-events", "The request holds invalid events", 400,
        $"{errors.Count} problem(s) found{ListedNote(errors)}; nothing was enqueued. Fix every problem and send the request again.", errors.Listed)
    {
        ErrorsNotListed = errors.NotListed,
    };

    public static ValidationProblem RequestTooLarge(int maxBytes) => new(
        TypePrefix + "request-too-large", "The request is too large", 413,
        $"The body is larger than {maxBytes} bytes (setting Ingest__MaxRequestBytes); nothing was enqueued. Split it into smaller requests.", []);

    public static ValidationProblem TooManyEvents(int maxEvents) => new(
        TypePrefix + "too-many-events", "The request holds too many events", 413,
        $"The body holds more than {maxEvents} events (setting Ingest__MaxEventsPerRequest); nothing was enqueued. Split it into smaller requests.", []);

    public static ValidationProblem EventsTooLarge(int maxBytes, IReadOnlyList<ProblemError> errors) => EventsTooLarge(maxBytes, Bounded(errors));

    public static ValidationProblem EventsTooLarge(int maxBytes, ProblemList errors) => new(
        TypePrefix + "event-too-large", "An event is too large", 413,
        $"{errors.Count} event(s) are larger than {maxBytes} bytes of UTF-8 JSON (setting Ingest__MaxEventBytes){ListedNote(errors)}; nothing was enqueued.", errors.Listed)
    {
        ErrorsNotListed = errors.NotListed,
    };

    public static ValidationProblem UnreadableBody(int status, string reason) => new(
        TypePrefix + "unreadable-body", "The request body could not be read", status,
        $"Reading the body failed ({reason}); nothing was enqueued. Check the request's framing (Content-Length, chunked encoding).", []);

    public static ValidationProblem Overloaded() => new(
        TypePrefix + "overloaded", "The ingest is busy", 503,
        "Too many request bodies are being received or checked at once (setting Ingest__MaxInFlightBodyBytes); nothing was enqueued. Send the same request again after Retry-After.", []);

    public static ValidationProblem BodyTooSlow(int minBytesPerSecond) => new(
        TypePrefix + "body-too-slow", "The body arrived too slowly", 408,
        $"The body arrived slower than {minBytesPerSecond} bytes per second (setting Ingest__MinBodyBytesPerSecond) while other requests needed its memory (Ingest__MaxInFlightBodyBytes); nothing was enqueued. Send it again.", []);

    public static ValidationProblem Stopping() => new(
        TypePrefix + "stopping", "The relay is stopping", 503,
        "The relay is shutting down and takes no new events; nothing was enqueued. Send the same request again after Retry-After.", []);

    /// <summary>An error the framework answers around the ingest (unknown route, wrong method, a malformed request, an
    /// unexpected failure), as a problem document instead of an empty body.</summary>
    public static ValidationProblem Http(int status, string title, string detail) => new(
        TypePrefix + "http-" + status.ToString(System.Globalization.CultureInfo.InvariantCulture), title, status, detail, []);

    private static ProblemList Bounded(IReadOnlyList<ProblemError> errors)
    {
        var list = new ProblemList();
        foreach (var error in errors)
        {
            list.Add(error);
        }
        return list;
    }

    private static string ListedNote(ProblemList errors) =>
        errors.NotListed > 0 ? $" (the first {errors.Listed.Count} are listed; {errors.NotListed} more are not)" : "";

    public static ValidationProblem UnsupportedMediaType(string? contentType) => new(
        TypePrefix + "unsupported-media-type", "Unsupported content type", 415,
        $"Content-Type '{contentType}' is not accepted: send application/json (or application/*+json, text/plain).", []);

    public static ValidationProblem BadSignature(bool missing, string expectedForm) => new(
        TypePrefix + "bad-signature", "The request signature is missing or wrong", 401,
        missing
            ? $"The {SignatureVerifier.HeaderName} header is required: {expectedForm}."
            : $"The {SignatureVerifier.HeaderName} header does not match the body: expected {expectedForm}.",
        []);

    public static ValidationProblem UnknownRoute(string type) => new(
        TypePrefix + "unknown-type", "Unknown event type in the route", 404,
        $"'{type}' is not one of {Events.EventTypes.NameList}.", []);

    public static ValidationProblem QueueUnavailable() => new(
        TypePrefix + "queue-unavailable", "The event queue is unavailable", 503,
        "The events could not all be enqueued, so none is reported accepted. Send the same request again after Retry-After; events with the same messageId are de-duplicated by the queue.", []);

    public static ValidationProblem SigningSecretUnresolved() => new(
        TypePrefix + "signing-secret-unavailable", "The ingest cannot check signatures yet", 503,
        "Ingest__SigningSecret is a Key Vault reference that has not resolved, so no signature can be checked and nothing is accepted. Send the same request again after Retry-After.", []);

    public static ValidationProblem QueueRefusedSize() => new(
        TypePrefix + "queue-refused-size", "The queue refused an event as too large", 413,
        "Service Bus refused a message as larger than the queue's message size; lower Ingest__MaxEventBytes to the tier's limit.", []);

    public byte[] ToUtf8Json() => JsonSerializer.SerializeToUtf8Bytes(this, SerializerOptions);

    private static readonly JsonSerializerOptions SerializerOptions = new() { DefaultIgnoreCondition = JsonIgnoreCondition.Never };
}
