using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Local mode's stand-in for the queue trigger: takes events from the in-process queue, runs the same
/// <see cref="RelayProcessor"/>, and settles as <see cref="RelayFunction"/> does — a scheduled copy for a retry,
/// a line in the dead-letter file for a dead letter. On stop it lets in-flight events finish (up to
/// <see cref="LocalOptions.ShutdownGrace"/>) and writes what is still queued to the file as <c>Shutdown</c>.
/// </summary>
public sealed partial class LocalRelayWorker(
    InProcessEventQueue queue,
    RelayProcessor processor,
    DeadLetterFile deadLetters,
    LocalCounters counters,
    IOptions<LocalOptions> options,
    TimeProvider time,
    ILogger<LocalRelayWorker> logger) : IHostedService
{
    public const string ShutdownReason = "Shutdown";

    private readonly CancellationTokenSource _abort = new();
    private Task[] _consumers = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _consumers = [.. Enumerable.Range(0, options.Value.Concurrency).Select(_ => Task.Run(ConsumeAsync, CancellationToken.None))];
        LogStarted(logger, options.Value.Concurrency, deadLetters.Path);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Stop accepting (the ingest now answers 503) and take back what no consumer has started.
        var left = queue.Close().ToList();
        var consumers = Task.WhenAll(_consumers);
        if (await Task.WhenAny(consumers, Task.Delay(options.Value.ShutdownGrace, time, cancellationToken)).ConfigureAwait(false) != consumers)
        {
            await _abort.CancelAsync().ConfigureAwait(false);
        }
        await consumers.ConfigureAwait(false);
        left.AddRange(queue.Close());
        foreach (var queued in left)
        {
            await WriteOutAsync(queued).ConfigureAwait(false);
        }
        Console.WriteLine(counters.Summary(deadLetters.Path));
    }

    private async Task ConsumeAsync()
    {
        await foreach (var queued in queue.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
        {
            try
            {
                await RelayAsync(queued).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_abort.IsCancellationRequested)
            {
                await WriteOutAsync(queued).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // A bug, not an outcome: keep the event (Service Bus would redeliver it) rather than drop it.
                LogUnexpected(logger, ex, EventMessageId(queued));
                await DeadLetterAsync(queued, "ProcessingFailed", ex.GetType().Name).ConfigureAwait(false);
                counters.AddDeadLettered();
            }
        }
    }

    private async Task RelayAsync(QueuedEvent queued)
    {
        var messageId = EventMessageId(queued);
        var outcome = await processor.ProcessAsync(queued.Body, messageId, queued.Attempt, _abort.Token).ConfigureAwait(false);
        switch (outcome)
        {
            case RelayOutcome.Delivered:
                counters.AddDelivered();
                break;
            case RelayOutcome.Skipped:
                counters.AddSkipped();
                break;
            case RelayOutcome.RetryLater retry:
                var copy = queued with { MessageId = RelayMessage.RetryMessageId(queued.MessageId, retry.NextAttempt), Attempt = retry.NextAttempt, EventMessageId = messageId };
                try
                {
                    await queue.ScheduleAsync(copy, time.GetUtcNow() + retry.Delay).ConfigureAwait(false);
                    counters.AddRetried();
                }
                catch (QueueClosedException)
                {
                    await WriteOutAsync(copy).ConfigureAwait(false);
                }
                break;
            case RelayOutcome.DeadLetter dead:
                await DeadLetterAsync(queued, dead.Reason.ToString(), dead.Description).ConfigureAwait(false);
                counters.AddDeadLettered();
                break;
            default:
                throw new InvalidOperationException($"Unknown outcome {outcome.GetType().Name}.");
        }
    }

    private async Task WriteOutAsync(QueuedEvent queued)
    {
        await DeadLetterAsync(queued, ShutdownReason, "The local relay stopped before this event was delivered; post it again to retry.").ConfigureAwait(false);
        counters.AddWrittenOut();
    }

    /// <summary>Appends to the dead-letter file; when the file cannot be written (disk full, no permission) the same
    /// line goes to standard error, so the event is still in the output and the consumer keeps going.</summary>
    private async Task DeadLetterAsync(QueuedEvent queued, string reason, string? description)
    {
        try
        {
            await deadLetters.AppendAsync(EventMessageId(queued), reason, description, queued.Attempt, queued.Body).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogDeadLetterFileFailed(logger, ex.GetType().Name, deadLetters.Path, EventMessageId(queued));
            await Console.Error.WriteAsync(DeadLetterFile.Format(EventMessageId(queued), reason, description, queued.Attempt, time.GetUtcNow(), queued.Body)).ConfigureAwait(false);
        }
    }

    private static string EventMessageId(QueuedEvent queued) => queued.EventMessageId ?? queued.MessageId;

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Local relay started: {Concurrency} consumer(s), dead letters to {Path}")]
    private static partial void LogStarted(ILogger logger, int concurrency, string path);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Error, Message = "Could not write to {Path} ({ExceptionType}); the dead letter of {MessageId} went to standard error")]
    private static partial void LogDeadLetterFileFailed(ILogger logger, string exceptionType, string path, string messageId);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "Relaying {MessageId} failed unexpectedly; written to the dead-letter file as ProcessingFailed")]
    private static partial void LogUnexpected(ILogger logger, Exception exception, string messageId);
}
