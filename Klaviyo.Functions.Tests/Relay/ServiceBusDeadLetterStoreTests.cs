using Azure.Messaging.ServiceBus;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Tests.Relay;

/// <summary>The Service Bus side of dead-letter replay, without a broker: a fake client and receiver over an in-memory
/// dead-letter queue, the real <see cref="ServiceBusEventQueue"/> over a recording sender.</summary>
[TestClass]
public sealed class ServiceBusDeadLetterStoreTests
{
    public TestContext TestContext { get; set; } = null!;

    private static async Task<ReplayResult> ReplayAsync(FakeDeadLetterClient client, RecordingSender sender, int max, string? reason, CancellationToken cancellationToken)
    {
        using var host = RelayTestHost.Create("http://127.0.0.1:1");
        var store = new ServiceBusDeadLetterStore(client, "klaviyo-events");
        var replayer = ActivatorUtilities.CreateInstance<DeadLetterReplayer>(host.Services, store, new ServiceBusEventQueue(sender));
        return await replayer.ReplayAsync(max, reason, cancellationToken);
    }

    private static IReadOnlyList<ServiceBusMessage> Sent(RecordingSender sender) => [.. sender.SentBatches.SelectMany(b => b)];

    [TestMethod]
    public async Task OpenAsync_ReadsThePeekLockedDeadLetterSubQueueOfTheEventsQueue()
    {
        var client = new FakeDeadLetterClient();

        var reader = await new ServiceBusDeadLetterStore(client, "klaviyo-events").OpenAsync(TestContext.CancellationToken);
        await reader.DisposeAsync();

        var (queueName, options) = client.ReceiversCreated.Single();
        Assert.AreEqual("klaviyo-events", queueName);
        Assert.AreEqual(SubQueue.DeadLetter, options.SubQueue);
        Assert.AreEqual(ServiceBusReceiveMode.PeekLock, options.ReceiveMode);
        Assert.AreEqual(0, options.PrefetchCount);
        Assert.AreEqual(1, client.ReceiversDisposed);
    }

    [TestMethod]
    public async Task ReceiveAsync_DeadLetter_CarriesReasonDescriptionAndSequenceNumber()
    {
        var client = new FakeDeadLetterClient().Add("m-1/attempt-10", "RetriesExhausted");

        var reader = await new ServiceBusDeadLetterStore(client, "klaviyo-events").OpenAsync(TestContext.CancellationToken);
        await using (reader)
        {
            var message = (await reader.ReceiveAsync(10, TestContext.CancellationToken)).Single();

            Assert.AreEqual("m-1/attempt-10", message.MessageId);
            Assert.AreEqual("RetriesExhausted", message.Reason);
            Assert.AreEqual("RetriesExhausted description", message.Description);
            Assert.AreEqual("track", message.Subject);
            Assert.AreEqual(client.DeadLetters[0].SequenceNumber, message.SequenceNumber);
            Assert.AreEqual("""{"type":"track","messageId":"m"}""", System.Text.Encoding.UTF8.GetString(message.Body.Span));
        }
        Assert.AreSequenceEqual([client.DeadLetters[0].SequenceNumber], client.Abandoned);
    }

    [TestMethod]
    public async Task Replay_WithReason_MovesOnlyThatReasonAndReleasesTheRestUnchanged()
    {
        var client = new FakeDeadLetterClient()
            .Add("a/attempt-10", "RetriesExhausted", properties: new Dictionary<string, object> { [MessageProperties.Attempt] = 10, [MessageProperties.EventMessageId] = "a" })
            .Add("b", "KlaviyoRejected")
            .Add("c", "retriesexhausted");
        var sender = new RecordingSender();
        var (a, b, c) = (client.DeadLetters[0].SequenceNumber, client.DeadLetters[1].SequenceNumber, client.DeadLetters[2].SequenceNumber);

        var result = await ReplayAsync(client, sender, 10, "RetriesExhausted", TestContext.CancellationToken);

        Assert.AreEqual(3, result.Scanned);
        Assert.AreSequenceEqual(["a", "c"], result.Moved.Select(m => m.MessageId));
        var sent = Sent(sender);
        Assert.AreSequenceEqual([$"a\u001Freplay-{a}", $"c\u001Freplay-{c}"], sent.Select(m => m.MessageId));
        Assert.IsTrue(sent.All(m => (int)m.ApplicationProperties[MessageProperties.Attempt] == 1), "a fresh attempt count");
        Assert.AreSequenceEqual(["a", "c"], sent.Select(m => (string)m.ApplicationProperties[MessageProperties.EventMessageId]));
        Assert.AreSequenceEqual([a, c], client.Completed);
        Assert.AreSequenceEqual([b], client.Abandoned);
        Assert.AreSequenceEqual(["b"], client.DeadLetters.Select(m => m.MessageId));
        Assert.IsEmpty(client.Locked);
        Assert.AreEqual(1, client.ReceiversDisposed);
    }

    [TestMethod]
    public async Task Replay_WithMax_ReceivesAndMovesNoMore()
    {
        var client = new FakeDeadLetterClient();
        for (var i = 0; i < 5; i++)
        {
            client.Add($"m{i}", "KlaviyoUnauthorized");
        }
        var sender = new RecordingSender(maxBatchBytes: 4096);

        var result = await ReplayAsync(client, sender, 2, null, TestContext.CancellationToken);

        Assert.HasCount(2, result.Moved);
        Assert.HasCount(2, Sent(sender));
        Assert.IsTrue(client.ReceiveRequests.All(n => n <= 2), "never receives (and locks) more than it may move");
        Assert.HasCount(3, client.DeadLetters);
        Assert.IsEmpty(client.Locked);
    }

    [TestMethod]
    public async Task Replay_WhenTheSendFails_CompletesNothingAndReleasesTheDeadLetter()
    {
        var client = new FakeDeadLetterClient().Add("a", "KlaviyoRejected").Add("b", "KlaviyoRejected");
        var sender = new RecordingSender { FailOnSend = 1 };

        var result = await ReplayAsync(client, sender, 10, null, TestContext.CancellationToken);

        Assert.IsEmpty(result.Moved);
        Assert.StartsWith("ServiceBusException", result.Interrupted);
        Assert.IsEmpty(client.Completed);
        Assert.HasCount(2, client.DeadLetters);
        Assert.IsEmpty(client.Locked, "every received dead letter is released for the next replay");
        Assert.AreEqual(1, client.ReceiversDisposed);
    }

    [TestMethod]
    public async Task Replay_DeadLetterWithA128CharacterMessageId_IsMovedUnderABoundedId()
    {
        var eventId = new string('e', 128);
        var client = new FakeDeadLetterClient().Add(eventId, "KlaviyoUnauthorized");
        var sender = new RecordingSender(maxBatchBytes: 4096);

        var result = await ReplayAsync(client, sender, 10, null, TestContext.CancellationToken);

        var sent = Sent(sender).Single();
        Assert.IsLessThanOrEqualTo(ServiceBusEventQueue.MaxMessageIdLength, sent.MessageId.Length);
        Assert.AreEqual(eventId, sent.ApplicationProperties[MessageProperties.EventMessageId]);
        Assert.AreEqual(eventId, result.Moved.Single().MessageId);
        Assert.HasCount(1, client.Completed);
    }
}
