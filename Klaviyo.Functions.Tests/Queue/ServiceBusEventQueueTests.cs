using System.Text;
using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Queue;

[TestClass]
public sealed class ServiceBusEventQueueTests
{
    public TestContext TestContext { get; set; } = null!;

    private static QueuedEvent Event(string id, int bodyBytes = 100, string subject = "track", int attempt = 1)
    {
        var json = $$"""{"type":"{{subject}}","messageId":"{{id}}","pad":"{{new string('x', Math.Max(0, bodyBytes - 40 - id.Length - subject.Length))}}"}""";
        return new QueuedEvent(id, subject, Encoding.UTF8.GetBytes(json), attempt);
    }

    [TestMethod]
    public async Task SendAsync_EventsFitOneBatch_SendsOneBatchWithMessageFields()
    {
        var sender = new RecordingSender();
        var queue = new ServiceBusEventQueue(sender);
        var events = new[] { Event("a", subject: "identify"), Event("b") };

        await queue.SendAsync(events, TestContext.CancellationToken);

        var batch = sender.SentBatches.Single();
        Assert.HasCount(2, batch);
        var first = batch[0];
        Assert.AreEqual("a", first.MessageId);
        Assert.AreEqual("identify", first.Subject);
        Assert.AreEqual("application/json", first.ContentType);
        Assert.AreEqual(Encoding.UTF8.GetString(events[0].Body.Span), first.Body.ToString());
        Assert.AreEqual(1, first.ApplicationProperties[MessageProperties.Attempt]);
        Assert.AreEqual("a", first.ApplicationProperties[MessageProperties.EventMessageId]);
        Assert.AreEqual("b", batch[1].MessageId);
    }

    [TestMethod]
    public async Task SendAsync_MoreThanOneBatchHolds_SendsSeveralBatchesInOrder()
    {
        var sender = new RecordingSender(maxBatchBytes: 1000);
        var queue = new ServiceBusEventQueue(sender);
        var events = Enumerable.Range(0, 25).Select(i => Event($"e{i}", bodyBytes: 300)).ToArray();

        await queue.SendAsync(events, TestContext.CancellationToken);

        Assert.IsGreaterThan(1, sender.SentBatches.Count);
        Assert.IsTrue(sender.SentBatches.All(b => b.Count > 0 && b.Sum(m => m.Body.ToMemory().Length) <= 1000));
        var sentIds = sender.SentBatches.SelectMany(b => b).Select(m => m.MessageId).ToArray();
        Assert.AreEqual(string.Join(",", events.Select(e => e.MessageId)), string.Join(",", sentIds));
    }

    [TestMethod]
    public async Task SendAsync_NoEvents_SendsNothing()
    {
        var sender = new RecordingSender();

        await new ServiceBusEventQueue(sender).SendAsync([], TestContext.CancellationToken);

        Assert.AreEqual(0, sender.BatchesCreated);
        Assert.IsEmpty(sender.SentBatches);
    }

    [TestMethod]
    public async Task SendAsync_EventLargerThanEmptyBatch_ThrowsMessageSizeExceeded()
    {
        var sender = new RecordingSender(maxBatchBytes: 500);
        var queue = new ServiceBusEventQueue(sender);

        var ex = await Assert.ThrowsExactlyAsync<ServiceBusException>(() => queue.SendAsync([Event("small"), Event("huge", bodyBytes: 800)], TestContext.CancellationToken));

        Assert.AreEqual(ServiceBusFailureReason.MessageSizeExceeded, ex.Reason);
        Assert.Contains("huge", ex.Message);
    }

    [TestMethod]
    public async Task SendAsync_SecondBatchFails_Throws()
    {
        var sender = new RecordingSender(maxBatchBytes: 1000) { FailOnSend = 2 };
        var queue = new ServiceBusEventQueue(sender);

        await Assert.ThrowsExactlyAsync<ServiceBusException>(() => queue.SendAsync([.. Enumerable.Range(0, 10).Select(i => Event($"e{i}", bodyBytes: 300))], TestContext.CancellationToken));

        Assert.HasCount(1, sender.SentBatches);
    }

    [TestMethod]
    public async Task ScheduleAsync_RetryCopy_KeepsTheCopysMessageIdAndCarriesTheEventId()
    {
        var sender = new RecordingSender();
        var at = new DateTimeOffset(2026, 11, 28, 13, 0, 0, TimeSpan.Zero);
        var copy = Event("evt-1/attempt-3", subject: "identify", attempt: 3) with { EventMessageId = "evt-1" };

        await new ServiceBusEventQueue(sender).ScheduleAsync(copy, at, TestContext.CancellationToken);

        var (message, scheduledAt) = sender.Scheduled.Single();
        Assert.AreEqual(at, scheduledAt);
        Assert.AreEqual("evt-1/attempt-3", message.MessageId);
        Assert.AreEqual("identify", message.Subject);
        Assert.AreEqual("application/json", message.ContentType);
        Assert.AreEqual(3, message.ApplicationProperties[MessageProperties.Attempt]);
        Assert.AreEqual("evt-1", message.ApplicationProperties[MessageProperties.EventMessageId]);
    }

    [TestMethod]
    public async Task SendAsync_CopyOfA128CharacterEventId_IsAcceptedWithABoundedDeterministicId()
    {
        var sender = new RecordingSender(maxBatchBytes: 4096);
        var eventId = new string('m', 128);
        var copy = Event(eventId + "/replay-42") with { EventMessageId = eventId };

        await new ServiceBusEventQueue(sender).SendAsync([copy], TestContext.CancellationToken);

        var message = sender.SentBatches.Single().Single();
        Assert.IsLessThanOrEqualTo(ServiceBusEventQueue.MaxMessageIdLength, message.MessageId.Length);
        Assert.EndsWith("/replay-42", message.MessageId);
        Assert.AreEqual(eventId, message.ApplicationProperties[MessageProperties.EventMessageId]);
        Assert.AreEqual(message.MessageId, ServiceBusEventQueue.BoundedMessageId(eventId + "/replay-42"));
        Assert.AreNotEqual(message.MessageId, ServiceBusEventQueue.BoundedMessageId(eventId + "/replay-43"));
    }

    [TestMethod]
    public void BoundedMessageId_Within128_IsUnchanged()
    {
        var id = new string('m', 118) + "/attempt-2";

        Assert.AreEqual(id, ServiceBusEventQueue.BoundedMessageId(id));
    }
}
