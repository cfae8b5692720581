using Klaviyo.Functions.Queue;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>An <see cref="IEventQueue"/> that records what was sent and scheduled.</summary>
internal sealed class RecordingEventQueue : IEventQueue
{
    private readonly Lock _gate = new();

    public List<QueuedEvent> Sent { get; } = [];

    public List<(QueuedEvent Event, DateTimeOffset EnqueueAt)> Scheduled { get; } = [];

    public Exception? FailWith { get; set; }

    public Task SendAsync(IReadOnlyList<QueuedEvent> events, CancellationToken cancellationToken = default)
    {
        if (FailWith is not null)
        {
            throw FailWith;
        }
        lock (_gate)
        {
            Sent.AddRange(events);
        }
        return Task.CompletedTask;
    }

    public Task ScheduleAsync(QueuedEvent queuedEvent, DateTimeOffset enqueueAt, CancellationToken cancellationToken = default)
    {
        if (FailWith is not null)
        {
            throw FailWith;
        }
        lock (_gate)
        {
            Scheduled.Add((queuedEvent, enqueueAt));
        }
        return Task.CompletedTask;
    }
}
