using Azure.Messaging.ServiceBus;
using Microsoft.Azure.Functions.Worker;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>Records settlement calls; built through the protected constructor the worker keeps for tests.</summary>
internal sealed class RecordingMessageActions : ServiceBusMessageActions
{
    public List<Settlement> Calls { get; } = [];

    public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
    {
        Calls.Add(new Settlement("Complete", message.MessageId, null, null));
        return Task.CompletedTask;
    }

    public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        Calls.Add(new Settlement("Abandon", message.MessageId, null, null));
        return Task.CompletedTask;
    }

    public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, Dictionary<string, object>? propertiesToModify = null, string? deadLetterReason = null, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
    {
        Calls.Add(new Settlement("DeadLetter", message.MessageId, deadLetterReason, deadLetterErrorDescription));
        return Task.CompletedTask;
    }

    public override Task DeferMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        Calls.Add(new Settlement("Defer", message.MessageId, null, null));
        return Task.CompletedTask;
    }
}

internal sealed record Settlement(string Action, string MessageId, string? Reason, string? Description);
