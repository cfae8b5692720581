using Azure.Messaging.ServiceBus;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// A <see cref="ServiceBusSender"/> (through its protected mocking constructor) whose batches hold at most
/// <see cref="MaxBatchBytes"/> of message bodies; records every batch sent and every message scheduled.
/// </summary>
internal sealed class RecordingSender(string entityPath = "klaviyo-events", long maxBatchBytes = 1024) : ServiceBusSender
{
    private readonly Dictionary<ServiceBusMessageBatch, List<ServiceBusMessage>> _open = [];

    public long MaxBatchBytes { get; } = maxBatchBytes;

    public List<IReadOnlyList<ServiceBusMessage>> SentBatches { get; } = [];

    public List<(ServiceBusMessage Message, DateTimeOffset At)> Scheduled { get; } = [];

    /// <summary>Thrown by the n-th (1-based) <see cref="SendMessagesAsync(ServiceBusMessageBatch, CancellationToken)"/> call.</summary>
    public int FailOnSend { get; set; }

    public int BatchesCreated { get; private set; }

    public override string EntityPath => entityPath;

    public override ValueTask<ServiceBusMessageBatch> CreateMessageBatchAsync(CancellationToken cancellationToken = default)
    {
        BatchesCreated++;
        var store = new List<ServiceBusMessage>();
        long used = 0;
        var batch = ServiceBusModelFactory.ServiceBusMessageBatch(MaxBatchBytes, store, tryAddCallback: message =>
        {
            var size = message.Body.ToMemory().Length;
            if (used + size > MaxBatchBytes)
            {
                return false;
            }
            used += size;
            return true;
        });
        _open[batch] = store;
        return ValueTask.FromResult(batch);
    }

    public override Task SendMessagesAsync(ServiceBusMessageBatch messageBatch, CancellationToken cancellationToken = default)
    {
        if (SentBatches.Count + 1 == FailOnSend)
        {
            throw new ServiceBusException("broker refused", ServiceBusFailureReason.ServiceBusy, EntityPath);
        }
        SentBatches.Add([.. _open[messageBatch]]);
        return Task.CompletedTask;
    }

    public override Task<long> ScheduleMessageAsync(ServiceBusMessage message, DateTimeOffset scheduledEnqueueTime, CancellationToken cancellationToken = default)
    {
        Scheduled.Add((message, scheduledEnqueueTime));
        return Task.FromResult((long)Scheduled.Count);
    }
}
