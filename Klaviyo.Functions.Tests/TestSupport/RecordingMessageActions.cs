using Azure.Messaging.ServiceBus;
using Microsoft.Azure.Functions.Worker;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>Records settlement calls; built through the protected constructor the worker keeps for tests.</summary>
internal sealed class RecordingMessageActions : ServiceBusMessageActions
{
    public List<Settlement> Calls { get; } = [];

    /// <summary>The properties each abandon carried, in call order.</summary>
    public List<IDictionary<string, object>?> AbandonedWith { get; } = [];

    /// <summary>Actions ("Complete", "DeadLetter", …) that throw after being recorded: a broker refusing the call.</summary>
    public Dictionary<string, Exception> Throws { get; } = [];

    public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
    {
        Calls.Add(new Settlement("Complete", message.MessageId, null, null));
        return Outcome("Complete");
    }

    public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        Calls.Add(new Settlement("Abandon", message.MessageId, null, null));
        AbandonedWith.Add(propertiesToModify);
        return Outcome("Abandon");
    }

    public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, Dictionary<string, object>? propertiesToModify = null, string? deadLetterReason = null, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
    {
        Calls.Add(new Settlement("DeadLetter", message.MessageId, deadLetterReason, deadLetterErrorDescription));
        return Outcome("DeadLetter");
    }

    public override Task DeferMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        Calls.Add(new Settlement("Defer", message.MessageId, null, null));
        return Outcome("Defer");
    }

    private Task Outcome(string action) => Throws.TryGetValue(action, out var failure) ? Task.FromException(failure) : Task.CompletedTask;
}

internal sealed record Settlement(string Action, string MessageId, string? Reason, string? Description);
