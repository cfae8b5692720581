using Microsoft.Extensions.Logging;

namespace Klaviyo.Functions.Relay;

/// <summary>Log lines both hosts' barriers share.</summary>
internal static partial class OrderingLog
{
    [LoggerMessage(EventId = 3301, Level = LogLevel.Warning, Message = "Ordering valve opened for key {KeyHash}: {Held} message(s) held behind one blocker, more than Relay__OrderingMaxHeldPerKey ({Max}); ordering is off for this key for {Duration}")]
    public static partial void ValveOpened(ILogger logger, string keyHash, long held, int max, TimeSpan duration);
}
