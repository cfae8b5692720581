using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Relay;

/// <summary>
/// The safety net under import-job tracking (spec 6, 8.3): Service Bus never expires or dead-letters a deferred
/// message on its own, so one whose tracker was lost (dead-lettered by the broker after its delivery count, or never
/// written) would stay parked for good. At most every <see cref="Interval"/>, messages parked longer than
/// <see cref="OrphanAge"/> (past the longest a tracker waits for its job, <see cref="ImportJobTracker.MaxWait"/>) are
/// taken back and put on the queue again, the same attempt (the relay lost them, not Klaviyo), each logged by messageId.
/// Runs after a batch on both hosts; a failure is logged and tried again at the next interval.
/// </summary>
internal sealed partial class ParkedSweeper(TimeProvider time, ILogger<ParkedSweeper> logger)
{
    /// <summary>Parked longer than this, no tracker holds a message any more.</summary>
    public static readonly TimeSpan OrphanAge = ImportJobTracker.MaxWait + TimeSpan.FromHours(1);

    /// <summary>Between two sweeps of one process.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(10);

    /// <summary>Most messages one sweep drives again.</summary>
    public const int MaxPerSweep = 500;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private long _next = long.MinValue;

    /// <summary>Sweeps when <see cref="Interval"/> has passed since this process last did (the first call sweeps).</summary>
    public async Task<int> SweepIfDueAsync<TMessage>(IRelaySettlement<TMessage> settlement, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcTicks;
        var next = Interlocked.Read(ref _next);
        if (cancellationToken.IsCancellationRequested || now < next || Interlocked.CompareExchange(ref _next, now + Interval.Ticks, next) != next)
        {
            return 0;
        }
        try
        {
            return await SweepAsync(settlement, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Never fails the batch it follows: that batch is settled already.
            LogSweepFailed(logger, ex.GetType().Name);
            return 0;
        }
    }

    /// <summary>One sweep: how many parked messages were put on the queue again.</summary>
    public async Task<int> SweepAsync<TMessage>(IRelaySettlement<TMessage> settlement, CancellationToken cancellationToken)
    {
        using var bounded = new CancellationTokenSource(Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, bounded.Token);
        var orphans = await settlement.ParkedBeforeAsync(time.GetUtcNow() - OrphanAge, MaxPerSweep, linked.Token).ConfigureAwait(false);
        if (orphans.Count == 0)
        {
            return 0;
        }
        var taken = await settlement.ReceiveDeferredAsync(orphans, linked.Token).ConfigureAwait(false);
        foreach (var attempt in taken.GroupBy(d => d.Attempt))
        {
            await settlement.RetryAsync(attempt.Select(d => d.Message).ToList(), attempt.Key, time.GetUtcNow(), linked.Token).ConfigureAwait(false);
            foreach (var delivery in attempt)
            {
                LogDrivenAgain(logger, delivery.EventMessageId, delivery.Attempt, OrphanAge);
            }
        }
        return taken.Count;
    }

    [LoggerMessage(EventId = 3215, Level = LogLevel.Warning, Message = "Event {MessageId} attempt {Attempt} was parked for an import job longer than {Age} with no tracker left to settle it; it is queued again")]
    private static partial void LogDrivenAgain(ILogger logger, string messageId, int attempt, TimeSpan age);

    [LoggerMessage(EventId = 3216, Level = LogLevel.Warning, Message = "Looking for parked messages no tracker holds failed ({ExceptionType}); tried again at the next interval")]
    private static partial void LogSweepFailed(ILogger logger, string exceptionType);
}
