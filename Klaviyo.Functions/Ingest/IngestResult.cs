using System.Text.Json;

namespace Klaviyo.Functions.Ingest;

/// <summary>What the ingest answers: a status, a JSON body and, for 503, a <c>Retry-After</c>.</summary>
internal sealed record IngestResult(int Status, string ContentType, ReadOnlyMemory<byte> Body, TimeSpan? RetryAfter = null)
{
    /// <summary>The ids of the events that were enqueued (empty unless 202).</summary>
    public IReadOnlyList<string> AcceptedMessageIds { get; init; } = [];

    public static IngestResult Accepted(IReadOnlyList<string> messageIds)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteNumber("accepted", messageIds.Count);
            writer.WriteStartArray("messageIds");
            foreach (var id in messageIds)
            {
                writer.WriteStringValue(id);
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return new IngestResult(202, "application/json", stream.ToArray()) { AcceptedMessageIds = messageIds };
    }

    public static IngestResult Problem(ValidationProblem problem, TimeSpan? retryAfter = null) =>
        new(problem.Status, ValidationProblem.ContentType, problem.ToUtf8Json(), retryAfter);
}
