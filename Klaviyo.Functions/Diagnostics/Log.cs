using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Diagnostics;

/// <summary>Source-generated log lines with fixed EventIds (3xxx: relay). Each carries the event's messageId; none carries a secret.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Event {MessageId} delivered on attempt {Attempt} ({Calls} Klaviyo call(s))")]
    public static partial void Delivered(ILogger logger, string messageId, int attempt, int calls);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Event {MessageId} skipped: {Reason}")]
    public static partial void Skipped(ILogger logger, string messageId, string reason);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Event {MessageId} attempt {Attempt} failed transiently; attempt {NextAttempt} in {Delay}: {Cause}")]
    public static partial void RetryLater(ILogger logger, string messageId, int attempt, int nextAttempt, TimeSpan delay, string cause);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Warning, Message = "Event {MessageId} attempt {Attempt} put off for {Delay} without spending the attempt: {Cause}")]
    public static partial void PutOff(ILogger logger, string messageId, int attempt, TimeSpan delay, string cause);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Error, Message = "Event {MessageId} dead-lettered on attempt {Attempt}: {Reason}: {Description}")]
    public static partial void DeadLettered(ILogger logger, string messageId, int attempt, string reason, string description);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "Event {MessageId}: {Warning}")]
    public static partial void PlanWarning(ILogger logger, string messageId, string warning);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Information, Message = "Dead-lettered event {MessageId} ({Reason}) moved back to the queue as {QueueMessageId}")]
    public static partial void Replayed(ILogger logger, string messageId, string? reason, string queueMessageId);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Information, Message = "Dead-letter replay: moved {Moved} of {Scanned} scanned (reason filter: {Reason})")]
    public static partial void ReplayFinished(ILogger logger, int moved, int scanned, string? reason);
}
