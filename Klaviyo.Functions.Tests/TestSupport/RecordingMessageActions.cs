using Azure.Messaging.ServiceBus;
using Microsoft.Azure.Functions.Worker;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>Records settlement calls; built through the protected constructor the worker keeps for tests.</summary>
internal sealed class RecordingMessageActions : ServiceBusMessageActions
{
    private readonly List<Settlement> _calls = [];

    /// <summary>Every settlement call, in call order (a batch settles in parallel, so recording is locked).</summary>
    public List<Settlement> Calls
    {
        get
        {
            lock (_calls)
            {
                return [.. _calls];
            }
        }
    }

    /// <summary>The messages deferred, for a <see cref="RecordingReceiver"/> to hand back.</summary>
    public List<ServiceBusReceivedMessage> Deferred { get; } = [];

    /// <summary>The properties each defer carried, in call order.</summary>
    public List<IDictionary<string, object>?> DeferredWith { get; } = [];

    /// <summary>The properties each abandon carried, in call order.</summary>
    public List<IDictionary<string, object>?> AbandonedWith { get; } = [];

    /// <summary>Actions ("Complete", "DeadLetter", …) that throw after being recorded: a broker refusing the call.</summary>
    public Dictionary<string, Exception> Throws { get; } = [];

    public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
    {
        Record(new Settlement("Complete", message.MessageId, null, null));
        return Outcome("Complete");
    }

    public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        Record(new Settlement("Abandon", message.MessageId, null, null));
        lock (_calls)
        {
            AbandonedWith.Add(propertiesToModify);
        }
        return Outcome("Abandon");
    }

    public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, Dictionary<string, object>? propertiesToModify = null, string? deadLetterReason = null, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
    {
        Record(new Settlement("DeadLetter", message.MessageId, deadLetterReason, deadLetterErrorDescription));
        return Outcome("DeadLetter");
    }

    public override Task DeferMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
    {
        Record(new Settlement("Defer", message.MessageId, null, null));
        lock (_calls)
        {
            Deferred.Add(message);
            DeferredWith.Add(propertiesToModify);
        }
        return Outcome("Defer");
    }

    private void Record(Settlement settlement)
    {
        lock (_calls)
        {
            _calls.Add(settlement);
        }
    }

    private Task Outcome(string action) => Throws.TryGetValue(action, out var failure) ? Task.FromException(failure) : Task.CompletedTask;
}

internal sealed record Settlement(string Action, string MessageId, string? Reason, string? Description);
