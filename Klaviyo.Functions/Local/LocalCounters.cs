namespace Klaviyo.Functions.Local;

/// <summary>What local mode did with the events it took, for the summary printed on exit.</summary>
public sealed class LocalCounters
{
    private long _delivered, _skipped, _deadLettered, _retried, _writtenOut;

    public long Delivered => Interlocked.Read(ref _delivered);
    public long Skipped => Interlocked.Read(ref _skipped);
    public long DeadLettered => Interlocked.Read(ref _deadLettered);
    public long Retried => Interlocked.Read(ref _retried);

    /// <summary>Still queued or waiting for a retry at shutdown, written to the dead-letter file as <c>Shutdown</c>.</summary>
    public long WrittenOut => Interlocked.Read(ref _writtenOut);

    public void AddDelivered() => Interlocked.Increment(ref _delivered);
    public void AddSkipped() => Interlocked.Increment(ref _skipped);
    public void AddDeadLettered() => Interlocked.Increment(ref _deadLettered);
    public void AddRetried() => Interlocked.Increment(ref _retried);
    public void AddWrittenOut() => Interlocked.Increment(ref _writtenOut);

    public string Summary(string deadLetterPath) =>
        $"Local relay stopped: {Delivered} delivered, {Skipped} skipped, {DeadLettered} dead-lettered, {WrittenOut} still queued (written to {deadLetterPath} as Shutdown); {Retried} retries were scheduled.";
}
