using Klaviyo.Functions.Relay;

namespace Klaviyo.Functions.Local;

/// <summary>What local mode did with the events it took since it started, for the summary printed on exit.</summary>
internal sealed class LocalCounters
{
    private long _delivered, _skipped, _deadLettered, _retried;

    public long Delivered => Interlocked.Read(ref _delivered);
    public long Skipped => Interlocked.Read(ref _skipped);
    public long DeadLettered => Interlocked.Read(ref _deadLettered);
    public long Retried => Interlocked.Read(ref _retried);

    /// <summary>Counts a settled outcome.</summary>
    public void Add(RelayOutcome outcome)
    {
        switch (outcome)
        {
            case RelayOutcome.Delivered:
                Interlocked.Increment(ref _delivered);
                break;
            case RelayOutcome.Skipped:
                Interlocked.Increment(ref _skipped);
                break;
            case RelayOutcome.RetryLater:
                Interlocked.Increment(ref _retried);
                break;
            case RelayOutcome.AwaitingJob or RelayOutcome.Gathered:
                break; // counted when its job's tracker settles it, or when the fuller call it waits for does
            default:
                Interlocked.Increment(ref _deadLettered);
                break;
        }
    }

    public string Summary(BacklogCounts backlog, string databasePath) =>
        $"Local relay stopped: {Delivered} delivered, {Skipped} skipped, {DeadLettered} dead-lettered, {backlog.Waiting} still queued "
        + $"(kept in {databasePath} for the next start); {Retried} retries were scheduled.";
}
