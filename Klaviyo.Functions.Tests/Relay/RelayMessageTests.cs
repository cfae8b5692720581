using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;

namespace Klaviyo.Functions.Tests.Relay;

[TestClass]
public sealed class RelayMessageTests
{
    private static readonly Dictionary<string, object> None = [];

    [TestMethod]
    [DataRow("abc", "abc")]
    [DataRow("abc/attempt-3", "abc")]
    [DataRow("abc/replay-17", "abc")]
    [DataRow("abc/replay-17/attempt-2", "abc")]
    [DataRow("a/b/attempt-x", "a/b/attempt-x")]
    [DataRow("/attempt-2", "/attempt-2")]
    public void EventMessageId_FromServiceBusId_StripsRelaySuffixes(string serviceBusId, string expected)
    {
        Assert.AreEqual(expected, RelayMessage.EventMessageId(serviceBusId, None));
    }

    [TestMethod]
    public void EventMessageId_WithProperty_PrefersProperty()
    {
        Assert.AreEqual("evt", RelayMessage.EventMessageId("x/attempt-2", new Dictionary<string, object> { [MessageProperties.EventMessageId] = "evt" }));
    }

    [TestMethod]
    [DataRow("abc", 2, "abc/attempt-2")]
    [DataRow("abc/attempt-2", 3, "abc/attempt-3")]
    [DataRow("abc/replay-17", 2, "abc/replay-17/attempt-2")]
    public void RetryMessageId_KeepsReplayLineage(string serviceBusId, int next, string expected)
    {
        Assert.AreEqual(expected, RelayMessage.RetryMessageId(serviceBusId, next));
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
}
