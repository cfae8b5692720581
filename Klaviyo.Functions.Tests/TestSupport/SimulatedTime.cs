using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// A clock that stands still while the relay talks to the fake Klaviyo, and jumps whenever the relay waits: a wait
/// (<c>Task.Delay</c> on this clock: a back-off, a Retry-After, a rate-limiter window) is over at once and moves the
/// clock by its length, so a test never sleeps for it and can read how long was waited from the clock. A timeout (a
/// <see cref="CancellationTokenSource"/> on this clock) fires only when the clock passes it: when waits add up past it,
/// or when the test calls <see cref="FakeTimeProvider.Advance"/> because the fake stalls.
/// </summary>
internal sealed class SimulatedTime : FakeTimeProvider
{
    private readonly Lock _gate = new();

    public SimulatedTime()
        : base(DateTimeOffset.UtcNow)
    {
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        if (state is not CancellationTokenSource && dueTime > TimeSpan.Zero && dueTime != Timeout.InfiniteTimeSpan)
        {
            // Not inline: the caller has not finished setting up what the timer completes.
            var due = GetUtcNow() + dueTime;
            ThreadPool.QueueUserWorkItem(_ => AdvanceTo(due));
        }
        return timer;
    }

    private void AdvanceTo(DateTimeOffset due)
    {
        lock (_gate)
        {
            if (GetUtcNow() < due)
            {
                SetUtcNow(due);
            }
        }
    }
}
