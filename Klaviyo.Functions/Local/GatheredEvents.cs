namespace Klaviyo.Functions.Local;

/// <summary>
/// Events the relay held back for a fuller bulk call (<see cref="Relay.RelayOutcome.Gathered"/>): still leased in the
/// database (so a restart hands them out again), kept here until a consumer takes them with its next batch.
/// </summary>
internal sealed class GatheredEvents
{
    private readonly object _gate = new();
    private List<LeasedEvent> _events = [];

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _events.Count;
            }
        }
    }

    /// <summary>When the longest-waiting event started waiting; null when none waits.</summary>
    public DateTimeOffset? Oldest
    {
        get
        {
            lock (_gate)
            {
                return _events.Count == 0 ? null : _events.Min(e => e.WaitingSince);
            }
        }
    }

    public void Add(IEnumerable<LeasedEvent> events)
    {
        lock (_gate)
        {
            _events.AddRange(events);
        }
    }

    /// <summary>All of them, in the order they were first leased (the queue's sequence), leaving none.</summary>
    public List<LeasedEvent> TakeAll()
    {
        lock (_gate)
        {
            var taken = _events;
            _events = [];
            taken.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
            return taken;
        }
    }
}
