using System.Text.Json;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Relay;

[TestClass]
public sealed class RelayMessageTests
{
    private const char Us = RelayMessage.Separator;
    private static readonly Dictionary<string, object> None = [];

    /// <summary>Sender ids chosen to look like the relay's copies (old and new forms), at the length limits, hashed forms.</summary>
    private static readonly string[] AdversarialSenderIds =
    [
        "abc",
        "order-1/attempt-2",
        "abc/attempt-2",
        "abc/replay-17",
        "abc/replay-17/attempt-2",
        "abc|attempt-2",
        "abc␟attempt-2",
        "abc\\u001fattempt-2",
        "12345",
        "7",
        "Ünïcødé ✓ 🎉",
        new string('m', RelayMessage.MaxPlainEventIdLength),
        new string('m', RelayMessage.MaxPlainEventIdLength + 1),
        new string('x', 118) + "/attempt-2",
        new string('z', EventValidatorMaxLength),
        "sha256:" + new string('a', 64),
        new string('a', 64) + "/attempt-2",
    ];

    private const int EventValidatorMaxLength = 128;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow("order-1/attempt-2", 2)]
    [DataRow("abc/replay-17", 2)]
    [DataRow("abc/replay-17/attempt-3", 3)]
    public void RetryMessageId_SenderIdShapedLikeACopy_DiffersFromTheOriginal(string senderId, int nextAttempt)
    {
        // Main built order-1/attempt-2's retry as order-1/attempt-2: duplicate detection dropped it, the event was lost.
        var copy = RelayMessage.RetryMessageId(senderId, nextAttempt);

        Assert.AreNotEqual(senderId, copy);
        Assert.AreEqual($"{senderId}{Us}attempt-{nextAttempt}", copy);
    }

    [TestMethod]
    public void RetryAndReplayIds_OfOneEvent_NeverEqualAnotherSendersId()
    {
        // Main: "abc"'s retry was "abc/attempt-2" and its replay "abc/replay-9", both ids another sender may choose.
        Assert.AreNotEqual("abc/attempt-2", RelayMessage.RetryMessageId("abc", 2));
        Assert.AreNotEqual("abc/replay-9", RelayMessage.ReplayMessageId("abc", 9));
        Assert.AreNotEqual("abc/replay-9/attempt-2", RelayMessage.RetryMessageId(RelayMessage.ReplayMessageId("abc", 9), 2));
    }

    [TestMethod]
    public async Task CopyIds_PostedAsMessageIds_AreRefusedByTheIngestWhileTheSenderIdsAreAccepted()
    {
        // The disjointness proof, end to end: every id the relay gives a copy carries a character the ingest refuses
        // in a messageId, so no sender-chosen MessageId can equal a copy's.
        var copies = AllCopyIds(AdversarialSenderIds).ToList();
        Assert.IsTrue(copies.All(c => c.Any(char.IsControl)), "every copy id carries a control character");

        var accepted = new IngestHost();
        var senderEvents = AdversarialSenderIds.Select(id => Track(id)).ToList();
        var answer = await accepted.PostAsync("/api/events", "[" + string.Join(',', senderEvents) + "]");
        Assert.AreEqual(202, answer.Status);
        var queuedIds = accepted.Queue.Sent.Select(e => e.MessageId).ToHashSet(StringComparer.Ordinal);
        Assert.HasCount(AdversarialSenderIds.Length, queuedIds);
        Assert.IsEmpty(copies.Where(queuedIds.Contains), "a copy id equals a sender's MessageId");

        foreach (var copy in copies.Distinct().Take(40))
        {
            var refused = new IngestHost();
            var response = await refused.PostAsync("/api/events", Track(copy));
            Assert.AreEqual(400, response.Status, copy);
            Assert.AreEqual("messageId", response.Errors.Single().GetProperty("field").GetString());
            Assert.IsEmpty(refused.Queue.Sent);
        }
    }

    [TestMethod]
    public void CopyIds_AnyEventId_FitServiceBusAndStayDistinct()
    {
        var ids = AllCopyIds(AdversarialSenderIds).ToList();

        Assert.IsTrue(ids.All(id => id.Length <= ServiceBusEventQueue.MaxMessageIdLength), string.Join('\n', ids.Where(id => id.Length > 128)));
        Assert.HasCount(ids.Count, ids.Distinct(StringComparer.Ordinal), "two copies of different events or lineages share an id");
    }

    [TestMethod]
    public void CopyIds_LongestInputs_FitServiceBus()
    {
        var longest = new string('m', RelayMessage.MaxPlainEventIdLength);
        var replay = RelayMessage.ReplayMessageId(longest, long.MaxValue);
        Assert.IsLessThanOrEqualTo(128, RelayMessage.RetryMessageId(replay, int.MaxValue).Length);
        var putOff = RelayMessage.PutOffMessageId(RelayMessage.RetryMessageId(replay, int.MaxValue), long.MaxValue, int.MaxValue);
        Assert.IsLessThanOrEqualTo(128, putOff.Length);
        Assert.IsLessThanOrEqualTo(128, RelayMessage.RetryMessageId(putOff, int.MaxValue).Length);

        var hashed = RelayMessage.ReplayMessageId(new string('m', 128), long.MaxValue);
        Assert.StartsWith($"{Us}sha256:", hashed);
        Assert.IsLessThanOrEqualTo(128, RelayMessage.RetryMessageId(hashed, int.MaxValue).Length);
        Assert.IsLessThanOrEqualTo(128, RelayMessage.PutOffMessageId(hashed, long.MaxValue, int.MaxValue).Length);
    }

    [TestMethod]
    public void RetryMessageId_OfACopy_KeepsReplayLineageAndReplacesTheAttempt()
    {
        var replay = RelayMessage.ReplayMessageId("abc", 17);
        Assert.AreEqual($"abc{Us}replay-17", replay);
        Assert.AreEqual($"abc{Us}replay-17{Us}attempt-2", RelayMessage.RetryMessageId(replay, 2));
        Assert.AreEqual($"abc{Us}replay-17{Us}attempt-3", RelayMessage.RetryMessageId(RelayMessage.RetryMessageId(replay, 2), 3));
        Assert.AreEqual($"abc{Us}attempt-3", RelayMessage.RetryMessageId(RelayMessage.RetryMessageId("abc", 2), 3));
    }

    [TestMethod]
    public void ReplayMessageId_SameDeadLetterTwice_SameId()
    {
        Assert.AreEqual(RelayMessage.ReplayMessageId("abc", 5), RelayMessage.ReplayMessageId("abc", 5));
        Assert.AreNotEqual(RelayMessage.ReplayMessageId("abc", 5), RelayMessage.ReplayMessageId("abc", 6));
        var longId = new string('q', 128);
        Assert.AreEqual(RelayMessage.ReplayMessageId(longId, 5), RelayMessage.ReplayMessageId(longId, 5));
    }

    [TestMethod]
    [DataRow("abc", "abc")]
    [DataRow("order-1/attempt-2", "order-1/attempt-2")]
    [DataRow("abc/replay-17", "abc/replay-17")]
    [DataRow("abc\u001Fattempt-3", "abc")]
    [DataRow("abc\u001Freplay-17\u001Fattempt-2", "abc")]
    public void EventMessageId_FromServiceBusIdOnly_IsTheSendersIdUpToTheSeparator(string serviceBusId, string expected)
    {
        Assert.AreEqual(expected, RelayMessage.EventMessageId(serviceBusId, None));
    }

    [TestMethod]
    public void EventMessageId_WithProperty_PrefersProperty()
    {
        Assert.AreEqual("evt", RelayMessage.EventMessageId($"x{Us}attempt-2", new Dictionary<string, object> { [MessageProperties.EventMessageId] = "evt" }));
    }

    [TestMethod]
    public void Attempt_AbsentOrUnreadable_IsOne()
    {
        Assert.AreEqual(1, RelayMessage.Attempt(None));
        Assert.AreEqual(1, RelayMessage.Attempt(new Dictionary<string, object> { [MessageProperties.Attempt] = "x" }));
        Assert.AreEqual(1, RelayMessage.Attempt(new Dictionary<string, object> { [MessageProperties.Attempt] = 0 }));
    }

    [TestMethod]
    public void Attempt_IntLongOrString_IsRead()
    {
        Assert.AreEqual(4, RelayMessage.Attempt(new Dictionary<string, object> { [MessageProperties.Attempt] = 4 }));
        Assert.AreEqual(5, RelayMessage.Attempt(new Dictionary<string, object> { [MessageProperties.Attempt] = 5L }));
        Assert.AreEqual(6, RelayMessage.Attempt(new Dictionary<string, object> { [MessageProperties.Attempt] = "6" }));
    }

    private static string Track(string messageId) =>
        $$"""{"type":"track","event":"Paid","userId":"u-1","messageId":{{JsonSerializer.Serialize(messageId)}}}""";

    /// <summary>Every copy the relay can make of these events: retries of the original, replays, retries of replays.</summary>
    private static IEnumerable<string> AllCopyIds(IEnumerable<string> eventIds)
    {
        foreach (var id in eventIds)
        {
            var retry = id;
            for (var attempt = 2; attempt <= 10; attempt++)
            {
                retry = RelayMessage.RetryMessageId(retry, attempt);
                yield return retry;
            }
            foreach (var sequence in new[] { 0L, 17L, long.MaxValue })
            {
                var replay = RelayMessage.ReplayMessageId(id, sequence);
                yield return replay;
                yield return RelayMessage.RetryMessageId(replay, 2);
                yield return RelayMessage.RetryMessageId(RelayMessage.RetryMessageId(replay, 2), 3);
            }
        }
    }
}
