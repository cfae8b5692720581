using System.Text.Json;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// Service Bus messages an invocation held back for a fuller bulk call (<see cref="RelayOutcome.Gathered"/>): parked
/// (deferred) on the queue, their sequence numbers kept here so this instance's next batch takes them back. A marker
/// message (<see cref="RelayMessage.GatheredSubject"/>) queued before they were parked, due when the longest-waiting
/// has waited <c>Relay__GatherWindow</c>, takes back whatever is still parked then: on an idle relay, after a restart,
/// or on another instance. Nothing is held past its lock: a parked message has none.
/// </summary>
internal sealed class GatheredParking(IOptions<RelayOptions> options)
{
    private readonly NextBatch<long> _sequences = new();

    public TimeSpan Window => options.Value.GatherWindow;

    public void Add(IEnumerable<long> sequences) => _sequences.Add(sequences);

    public IReadOnlyList<long> TakeAll() => _sequences.TakeAll();

    /// <summary>The marker's body: the sequence numbers it takes back.</summary>
    public static byte[] MarkerBody(IReadOnlyList<long> sequences) => JsonSerializer.SerializeToUtf8Bytes(sequences);

    /// <summary>The sequence numbers a marker names; null when its body is not a JSON array of numbers.</summary>
    public static IReadOnlyList<long>? ReadMarker(ReadOnlyMemory<byte> body)
    {
        try
        {
            return JsonSerializer.Deserialize<long[]>(body.Span);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
