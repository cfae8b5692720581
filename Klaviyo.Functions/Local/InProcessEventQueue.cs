using System.Threading.Channels;
using Klaviyo.Functions.Queue;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Local mode's queue: an unbounded in-memory channel for ready events plus in-memory timers for scheduled retries
/// (spec section 9). Unlike Service Bus it keeps nothing across restarts, which is why shutdown writes whatever is
/// still queued or waiting to the dead-letter file.
/// </summary>
public sealed class InProcessEventQueue : IEventQueue, IDisposable
{
    private readonly Channel<QueuedEvent> _ready = Channel.CreateUnbounded<QueuedEvent>(new UnboundedChannelOptions { SingleReader = false });
    // One lock for the scheduled set and closing, so a retry timer firing during Close() either makes its event ready
    // before the channel completes or leaves it for Close() to return: never neither.
    private readonly Lock _gate = new();
    private readonly Dictionary<long, (QueuedEvent Event, ITimer Timer)> _scheduled = [];
    private readonly TimeProvider _time;
    private long _nextScheduleId;
    private bool _closed;

    public InProcessEventQueue(TimeProvider? timeProvider = null) => _time = timeProvider ?? TimeProvider.System;

    /// <summary>Where the relay worker reads ready events from.</summary>
    public ChannelReader<QueuedEvent> Reader => _ready.Reader;

    /// <summary>Events waiting for a scheduled retry.</summary>
    public int ScheduledCount
    {
        get { lock (_gate) { return _scheduled.Count; } }
    }

    public Task SendAsync(IReadOnlyList<QueuedEvent> events, CancellationToken cancellationToken = default)
    {
        foreach (var queued in events)
        {
            // Fails once Close() completed the channel; whatever was written before is returned by Close().
            if (!_ready.Writer.TryWrite(queued))
            {
                throw new QueueClosedException();
            }
        }
        return Task.CompletedTask;
    }

    public Task ScheduleAsync(QueuedEvent queuedEvent, DateTimeOffset enqueueAt, CancellationToken cancellationToken = default)
    {
        var due = enqueueAt - _time.GetUtcNow();
        ITimer timer;
        lock (_gate)
        {
            if (_closed)
            {
                throw new QueueClosedException();
            }
            var id = ++_nextScheduleId;
            // Created stopped and started once registered, so a zero delay cannot fire before the entry exists.
            timer = _time.CreateTimer(static state => ((Action)state!)(), (Action)(() => Release(id)), Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _scheduled[id] = (queuedEvent, timer);
        }
        timer.Change(due < TimeSpan.Zero ? TimeSpan.Zero : due, Timeout.InfiniteTimeSpan);
        return Task.CompletedTask;
    }

    /// <summary>Stops accepting events and returns everything not yet handed to a reader: ready and scheduled.</summary>
    public IReadOnlyList<QueuedEvent> Close()
    {
        var left = new List<QueuedEvent>();
        lock (_gate)
        {
            _closed = true;
            _ready.Writer.TryComplete();
            foreach (var (_, entry) in _scheduled)
            {
                entry.Timer.Dispose();
                left.Add(entry.Event);
            }
            _scheduled.Clear();
        }
        while (_ready.Reader.TryRead(out var queued))
        {
            left.Add(queued);
        }
        return left;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var (_, entry) in _scheduled)
            {
                entry.Timer.Dispose();
            }
        }
    }

    private void Release(long id)
    {
        lock (_gate)
        {
            if (_closed || !_scheduled.Remove(id, out var entry))
            {
                return; // closed: the entry stays for Close() (or it already took it)
            }
            entry.Timer.Dispose();
            _ready.Writer.TryWrite(entry.Event); // cannot fail: the channel completes only under this lock, in Close()
        }
    }
}

/// <summary>The local queue no longer accepts events (the app is stopping). The ingest answers 503.</summary>
public sealed class QueueClosedException() : QueueUnavailableException("The local queue is closed: the relay is shutting down.");
