using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// The events queue around a <see cref="RelayTestHost"/>'s Relay function, on the host's <see cref="SimulatedTime"/>:
/// messages go in as the ingest queues them (<see cref="ServiceBusEventQueue"/>'s own message, application properties
/// and all) with the broker's sequence numbers; each <see cref="RunNextAsync"/> moves the clock to the next message
/// that becomes visible and hands every visible message to the function as one batch; the copies it schedules (retries,
/// put-offs) go back in at their time. Settled messages leave (the settlement calls are recorded in <see cref="Actions"/>).
/// </summary>
internal sealed class SimulatedServiceBus(RelayTestHost host)
{
    private readonly List<(ServiceBusReceivedMessage Message, DateTimeOffset VisibleAt)> _pending = [];
    private long _sequence = 1000;
    private int _scheduledSeen;

    public RecordingMessageActions Actions { get; } = new();

    /// <summary>Every batch handed to the function: the event messageIds of each, in order.</summary>
    public List<IReadOnlyList<string>> Batches { get; } = [];

    public int Pending => _pending.Count;

    public void Send(QueuedEvent queued) => _pending.Add((Received(queued), host.Time!.GetUtcNow()));

    /// <summary>Runs the next batch: the clock moves to the first visible message (never back), every message visible
    /// then is delivered. False when nothing is waiting.</summary>
    public async Task<bool> RunNextAsync(CancellationToken cancellationToken)
    {
        if (_pending.Count == 0)
        {
            return false;
        }
        var next = _pending.Min(p => p.VisibleAt);
        if (next > host.Time!.GetUtcNow())
        {
            host.Time.SetUtcNow(next);
        }
        var now = host.Time.GetUtcNow();
        var batch = _pending.Where(p => p.VisibleAt <= now).Select(p => p.Message).ToArray();
        _pending.RemoveAll(p => p.VisibleAt <= now);
        Batches.Add(batch.Select(m => Functions.Relay.RelayMessage.EventMessageId(m)).ToList());
        await host.Function.RunAsync(batch, Actions, cancellationToken);
        var scheduled = host.Queue.Scheduled;
        foreach (var (queued, at) in scheduled.Skip(_scheduledSeen))
        {
            _pending.Add((Received(queued), at));
        }
        _scheduledSeen = scheduled.Count;
        return true;
    }

    /// <summary>Runs batches until the queue is empty (at most <paramref name="maxBatches"/>).</summary>
    public async Task DrainAsync(CancellationToken cancellationToken, int maxBatches = 50)
    {
        for (var i = 0; i < maxBatches && await RunNextAsync(cancellationToken); i++)
        {
        }
        Assert.AreEqual(0, Pending, "the queue did not drain");
    }

    private ServiceBusReceivedMessage Received(QueuedEvent queued)
    {
        var sent = ServiceBusEventQueue.ToMessage(queued);
        return ServiceBusModelFactory.ServiceBusReceivedMessage(
            body: sent.Body,
            messageId: sent.MessageId,
            subject: sent.Subject,
            contentType: sent.ContentType,
            properties: sent.ApplicationProperties,
            lockTokenGuid: Guid.NewGuid(),
            sequenceNumber: ++_sequence,
            enqueuedTime: host.Time!.GetUtcNow(),
            deliveryCount: 1);
    }
}
