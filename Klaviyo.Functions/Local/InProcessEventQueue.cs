using System.Collections.Concurrent;
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
    private readonly ConcurrentDictionary<long, (QueuedEvent Event, ITimer Timer)> _scheduled = new();
    private readonly TimeProvider _time;
    private long _nextScheduleId;
    private volatile bool _closed;

    public InProcessEventQueue(TimeProvider? timeProvider = null) => _time = timeProvider ?? TimeProvider.System;

    /// <summary>Where the relay worker reads ready events from.</summary>
    public ChannelReader<QueuedEvent> Reader => _ready.Reader;

    /// <summary>Events waiting for a scheduled retry.</summary>
    public int ScheduledCount => _scheduled.Count;

    public Task SendAsync(IReadOnlyList<QueuedEvent> events, CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        foreach (var queued in events)
        {
            if (!_ready.Writer.TryWrite(queued))
            {
                throw new QueueClosedException();
            }
        }
        return Task.CompletedTask;
    }

    public Task ScheduleAsync(QueuedEvent queuedEvent, DateTimeOffset enqueueAt, CancellationToken cancellationToken = default)
    {
        ThrowIfClosed();
        var id = Interlocked.Increment(ref _nextScheduleId);
        var due = enqueueAt - _time.GetUtcNow();
        if (due < TimeSpan.Zero)
        {
            due = TimeSpan.Zero;
        }
        // Created stopped and started once registered, so a zero delay cannot fire before the entry exists.
        var timer = _time.CreateTimer(static state => ((Action)state!)(), (Action)(() => Release(id)), Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _scheduled[id] = (queuedEvent, timer);
        timer.Change(due, Timeout.InfiniteTimeSpan);
        return Task.CompletedTask;
    }

    /// <summary>Stops accepting events and returns everything not yet handed to a reader: ready and scheduled.</summary>
    public IReadOnlyList<QueuedEvent> Close()
    {
        _closed = true;
        _ready.Writer.TryComplete();
        var left = new List<QueuedEvent>();
        foreach (var id in _scheduled.Keys)
        {
            if (_scheduled.TryRemove(id, out var entry))
            {
                entry.Timer.Dispose();
                left.Add(entry.Event);
            }
        }
        while (_ready.Reader.TryRead(out var queued))
        {
            left.Add(queued);
        }
        return left;
    }

    public void Dispose()
    {
        foreach (var entry in _scheduled.Values)
        {
            entry.Timer.Dispose();
        }
    }

    private void Release(long id)
    {
        if (_scheduled.TryRemove(id, out var entry))
        {
            entry.Timer.Dispose();
            if (!_ready.Writer.TryWrite(entry.Event))
            {
                // Closed between the timer firing and the write: put it back so Close() reports it.
                _scheduled[id] = entry;
            }
        }
    }

    private void ThrowIfClosed()
    {
        if (_closed)
        {
            throw new QueueClosedException();
        }
    }
}

/// <summary>The local queue no longer accepts events (the app is stopping). The ingest answers 503.</summary>
public sealed class QueueClosedException() : QueueUnavailableException("The local queue is closed: the relay is shutting down.");
