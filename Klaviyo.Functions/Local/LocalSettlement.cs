using Klaviyo.Functions.Relay;
using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Local;

/// <summary>Settlement on the local SQLite queue: each call one commit; dead letters are also appended to the
/// dead-letter file once committed (the database stays the record if the file cannot be written).</summary>
internal sealed partial class LocalSettlement(SqliteEventQueue queue, DeadLetterFile file, TimeProvider time, ILogger<LocalSettlement> logger,
    Microsoft.Extensions.Options.IOptions<LocalOptions> options) : IRelaySettlement<LeasedEvent>
{
    /// <summary>Events kept leased for the next batch; a consumer takes them with its next lease.</summary>
    public GatheredEvents Gathered { get; } = new();

    public async Task CompleteAsync(IReadOnlyList<LeasedEvent> messages, CancellationToken cancellationToken) =>
        Report(messages, await queue.CompleteAsync(messages).WaitAsync(cancellationToken).ConfigureAwait(false));

    public async Task RetryAsync(IReadOnlyList<LeasedEvent> messages, int nextAttempt, DateTimeOffset due, CancellationToken cancellationToken) =>
        Report(messages, await queue.RetryAsync(messages, nextAttempt, due).WaitAsync(cancellationToken).ConfigureAwait(false));

    public async Task DeadLetterAsync(IReadOnlyList<LeasedEvent> messages, string reason, string? description, CancellationToken cancellationToken)
    {
        var settled = await queue.DeadLetterAsync(messages, reason, description).WaitAsync(cancellationToken).ConfigureAwait(false);
        Report(messages, settled.Count);
        foreach (var dead in settled)
        {
            try
            {
                await file.AppendAsync(dead.EventMessageId, reason, description, dead.Attempt, dead.Body, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The dead letter is in the database either way; the line still reaches the operator on standard error.
                LogFileFailed(logger, ex.GetType().Name, file.Path, dead.EventMessageId);
                await Console.Error.WriteAsync(DeadLetterFile.Format(dead.EventMessageId, reason, description, dead.Attempt, time.GetUtcNow(), dead.Body)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The event stays leased and is handed out again when its lease lapses (<c>Local__LeaseDuration</c>), the
    /// same attempt: the database just refused a write, so a longer wait beats another one now. No delivery limit applies.</summary>
    public Task GiveBackAsync(IReadOnlyList<LeasedEvent> messages, IDictionary<string, object> properties, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Renews their leases (so a batch relayed later still fits them) and keeps them for the next batch; one whose
    /// lease was lost is another consumer's now and is not kept.</summary>
    public async Task GatherAsync(IReadOnlyList<LeasedEvent> messages, CancellationToken cancellationToken)
    {
        var held = await queue.RenewLeasesAsync(messages, options.Value.LeaseDuration).WaitAsync(cancellationToken).ConfigureAwait(false);
        Report(messages, held.Count);
        var now = time.GetUtcNow();
        Gathered.Add(held.Select(leased => leased with { WaitingSince = leased.WaitingSince ?? now }));
    }

    public async Task DeferAsync(IReadOnlyList<LeasedEvent> messages, CancellationToken cancellationToken) =>
        Report(messages, await queue.DeferAsync(messages).WaitAsync(cancellationToken).ConfigureAwait(false));

    public async Task<IReadOnlyList<RelayDelivery<LeasedEvent>>> ReceiveDeferredAsync(IReadOnlyList<long> sequences, CancellationToken cancellationToken) =>
        (await queue.ReceiveDeferredAsync(sequences).WaitAsync(cancellationToken).ConfigureAwait(false)).Select(Delivery).ToList();

    public Task<IReadOnlySet<long>> StillParkedAsync(IReadOnlyList<long> sequences, CancellationToken cancellationToken) =>
        Task.FromResult(queue.StillDeferred(sequences));

    public Task<IReadOnlyList<long>> ParkedBeforeAsync(DateTimeOffset before, int max, CancellationToken cancellationToken) =>
        Task.FromResult(queue.DeferredBefore(before, max));

    public Task SendLaterAsync(Queue.QueuedEvent message, DateTimeOffset due, CancellationToken cancellationToken) =>
        queue.ScheduleAsync(message, due, cancellationToken).WaitAsync(cancellationToken);

    /// <summary>How the relay reads a leased event.</summary>
    public static RelayDelivery<LeasedEvent> Delivery(LeasedEvent leased) =>
        new(leased, leased.EventMessageId, leased.Body, leased.Attempt, leased.Sequence, leased.Subject,
            leased.OrderingKey is { } key ? new Queue.OrderingStamp(key, 0, leased.Sequence) : null, leased.WaitingSince);

    private void Report(IReadOnlyList<LeasedEvent> messages, int settled)
    {
        if (settled < messages.Count)
        {
            LogLeaseLost(logger, messages.Count - settled);
        }
    }

    [LoggerMessage(EventId = 5004, Level = LogLevel.Warning, Message = "{Count} event(s) were not settled: their lease lapsed and another consumer took them (delivered at least once)")]
    private static partial void LogLeaseLost(ILogger logger, int count);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Error, Message = "Could not write to {Path} ({ExceptionType}); the dead letter of {MessageId} is kept in the database and went to standard error")]
    private static partial void LogFileFailed(ILogger logger, string exceptionType, string path, string messageId);
}
