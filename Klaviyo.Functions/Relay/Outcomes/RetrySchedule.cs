namespace Klaviyo.Functions.Relay;

/// <summary>
/// Back-off of queue-level retries (spec section 6): about 30 s, 2 min, 10 min, 30 min, 1 h, then 2 h, each with
/// ±20 % jitter, and never sooner than Klaviyo's <c>Retry-After</c>. Pure: randomness is injected.
/// </summary>
internal sealed class RetrySchedule(Func<double> nextUnitRandom)
{
    private static readonly TimeSpan[] Steps =
    [
        TimeSpan.FromSeconds(30),
        TimeSpan.FromMinutes(2),
        TimeSpan.FromMinutes(10),
        TimeSpan.FromMinutes(30),
        TimeSpan.FromHours(1),
        TimeSpan.FromHours(2),
    ];

    /// <summary>A Retry-After beyond this is treated as this: a broken or hostile header must not park an event for weeks.</summary>
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromHours(24);

    public const double Jitter = 0.2;

    public RetrySchedule()
        : this(Random.Shared.NextDouble)
    {
    }

    /// <summary>The delay before attempt <paramref name="failedAttempt"/> + 1.</summary>
    public TimeSpan DelayAfter(int failedAttempt, TimeSpan? retryAfter) => Compute(failedAttempt, retryAfter, nextUnitRandom());

    /// <param name="failedAttempt">The 1-based attempt that just failed.</param>
    /// <param name="retryAfter">Klaviyo's <c>Retry-After</c>, if any.</param>
    /// <param name="unitRandom">A number in [0, 1); 0.5 means no jitter.</param>
    public static TimeSpan Compute(int failedAttempt, TimeSpan? retryAfter, double unitRandom)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(failedAttempt, 1);
        var step = Steps[Math.Min(failedAttempt, Steps.Length) - 1];
        var factor = 1 - Jitter + (2 * Jitter * Math.Clamp(unitRandom, 0, 1));
        var jittered = step * factor;
        var floor = retryAfter is { } header ? TimeSpan.FromTicks(Math.Clamp(header.Ticks, 0, MaxRetryAfter.Ticks)) : TimeSpan.Zero;
        return jittered > floor ? jittered : floor;
    }
}
