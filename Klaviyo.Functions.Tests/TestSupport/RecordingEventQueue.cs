using Klaviyo.Functions.Queue;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>An <see cref="IEventQueue"/> that keeps what it was given; it can fail on demand, after enqueuing some.</summary>
internal sealed class RecordingEventQueue : IEventQueue
{
    private readonly Lock _gate = new();
    private readonly List<QueuedEvent> _sent = [];
    private readonly List<(QueuedEvent Event, DateTimeOffset At)> _scheduled = [];

    /// <summary>Thrown by <see cref="SendAsync"/> (after <see cref="EnqueueBeforeFailure"/> events were kept) when set.</summary>
    public Exception? Failure { get; set; }

    public int EnqueueBeforeFailure { get; set; }

    /// <summary>When set, <see cref="SendAsync"/> waits for this task (honouring cancellation) before doing anything.</summary>
    public Task? Block { get; set; }

    public TaskCompletionSource SendStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int SendCalls { get; private set; }

    public IReadOnlyList<QueuedEvent> Sent
    {
        get { lock (_gate) { return [.. _sent]; } }
    }

    public IReadOnlyList<(QueuedEvent Event, DateTimeOffset At)> Scheduled
    {
        get { lock (_gate) { return [.. _scheduled]; } }
    }

    public async Task SendAsync(IReadOnlyList<QueuedEvent> events, CancellationToken cancellationToken = default)
    {
        SendCalls++;
        SendStarted.TrySetResult();
        if (Block is not null)
        {
            await Block.WaitAsync(cancellationToken);
        }
        lock (_gate)
        {
            if (Failure is not null)
            {
                _sent.AddRange(events.Take(EnqueueBeforeFailure));
                throw Failure;
            }
            _sent.AddRange(events);
        }
    }

    public Task ScheduleAsync(QueuedEvent queuedEvent, DateTimeOffset enqueueAt, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (Failure is not null)
            {
                throw Failure;
            }
            _scheduled.Add((queuedEvent, enqueueAt));
        }
        return Task.CompletedTask;
    }
}
