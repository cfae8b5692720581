using Klaviyo.Functions.Relay;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Events the relay held back for a fuller bulk call (<see cref="RelayOutcome.Gathered"/>): still leased in the
/// database (so a restart hands them out again), kept here until a consumer takes them with its next batch.
/// </summary>
internal sealed class GatheredEvents
{
    private readonly NextBatch<LeasedEvent> _events = new();

    /// <summary>When the longest-waiting event started waiting; null when none waits.</summary>
    public DateTimeOffset? Oldest => _events.Min(e => e.WaitingSince);

    public void Add(IEnumerable<LeasedEvent> events) => _events.Add(events);

    /// <summary>All of them, in the order they were first queued, leaving none.</summary>
    public List<LeasedEvent> TakeAll()
    {
        var taken = _events.TakeAll();
        taken.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        return taken;
    }
}
