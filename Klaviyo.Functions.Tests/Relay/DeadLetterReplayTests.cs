using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;

namespace Klaviyo.Functions.Tests.Relay;

[TestClass]
public sealed class DeadLetterReplayTests
{
    private static (RelayTestHost Host, FakeDeadLetterStore Store) Create()
    {
        var host = RelayTestHost.Create("http://127.0.0.1:1");
        var store = new FakeDeadLetterStore();
        return (host, store);
    }

    private static DeadLetterReplayer Replayer(RelayTestHost host, FakeDeadLetterStore store) =>
        ActivatorUtilities.CreateInstance<DeadLetterReplayer>(host.Services, store);

    [TestMethod]
    public async Task Replay_WithReason_MovesOnlyThatReasonWithFreshAttempt()
    {
        var (host, store) = Create();
        using var _ = host;
        store.Add("a\u001Fattempt-10", "RetriesExhausted").Add("b", "KlaviyoRejected").Add("c\u001Fattempt-4", "RetriesExhausted");

        var result = await Replayer(host, store).ReplayAsync(10, "RetriesExhausted", CancellationToken.None);

        Assert.AreSequenceEqual(["a", "c"], result.Moved.Select(m => m.MessageId));
        Assert.AreEqual(3, result.Scanned);
        Assert.AreSequenceEqual(["a\u001Freplay-101", "c\u001Freplay-103"], host.Queue.Sent.Select(e => e.MessageId));
        Assert.IsTrue(host.Queue.Sent.All(e => e.Attempt == 1 && e.Subject == "track"));
        Assert.AreSequenceEqual(["b"], store.Messages.Select(m => m.MessageId));
        Assert.AreEqual(1, store.Released);
    }

    [TestMethod]
    public async Task Replay_OrderedDeadLetter_KeepsItsOrderingKeyAndReceivedAt()
    {
        var (host, store) = Create();
        using var _ = host;
        store.Messages.Add(new DeadLetteredMessage("p\u001Fattempt-10", "identify", "{\"type\":\"identify\"}"u8.ToArray(), "RetriesExhausted", "d", 7,
            new Dictionary<string, object> { [MessageProperties.OrderingKey] = "person-1", [MessageProperties.ReceivedAt] = 1234L, [MessageProperties.ArrivalSequence] = 5L }));
        store.Add("t", "RetriesExhausted");

        await Replayer(host, store).ReplayAsync(10, null, CancellationToken.None);

        var replayed = host.Queue.Sent.Single(e => e.EventMessageId == "p");
        Assert.AreEqual(new OrderingStamp("person-1", 1234, null), replayed.Ordering, "still ordered; its sequence is the replay's own");
        Assert.IsNull(host.Queue.Sent.Single(e => e.EventMessageId == "t").Ordering);
    }

    [TestMethod]
    public async Task Replay_WithMax_MovesNoMore()
    {
        var (host, store) = Create();
        using var _ = host;
        for (var i = 0; i < 5; i++)
        {
            store.Add($"m{i}", "KlaviyoRejected");
        }

        var result = await Replayer(host, store).ReplayAsync(2, null, CancellationToken.None);

        Assert.HasCount(2, result.Moved);
        Assert.HasCount(2, host.Queue.Sent);
        Assert.HasCount(3, store.Messages);
    }

    [TestMethod]
    public async Task Replay_WhenQueueRefuses_LeavesTheDeadLetterInPlace()
    {
        var (host, store) = Create();
        using var _ = host;
        store.Add("a", "KlaviyoRejected");
        host.Queue.Failure = new InvalidOperationException("queue down");

        var result = await Replayer(host, store).ReplayAsync(10, null, CancellationToken.None);

        Assert.IsEmpty(result.Moved);
        Assert.AreEqual("InvalidOperationException: queue down", result.Interrupted);
        Assert.HasCount(1, store.Messages);
        Assert.AreEqual(1, store.Released);
    }

    [TestMethod]
    public async Task Function_WithQuery_AnswersWhatItMoved()
    {
        var (host, store) = Create();
        using var _ = host;
        store.Add("a", "KlaviyoUnauthorized").Add("b", "KlaviyoRejected");
        var function = new ReplayDeadLettersFunction(Replayer(host, store));
        var request = new DefaultHttpContext().Request;
        request.Method = "POST";
        request.QueryString = new QueryString("?max=5&reason=KlaviyoUnauthorized");

        var result = await function.RunAsync(request, CancellationToken.None);

        var body = Assert.IsInstanceOfType<ReplayDeadLettersFunction.Response>(Assert.IsInstanceOfType<OkObjectResult>(result).Value);
        Assert.AreEqual(1, body.Moved);
        Assert.AreEqual("KlaviyoUnauthorized", body.Reason);
        Assert.AreEqual("a", body.Messages.Single().MessageId);
        Assert.AreEqual("KlaviyoUnauthorized description", body.Messages.Single().Description);
    }

    [TestMethod]
    [DataRow("?max=0")]
    [DataRow("?max=1001")]
    [DataRow("?max=ten")]
    [DataRow("?reason=")]
    public async Task Function_WithBadQuery_Answers400NamingTheField(string query)
    {
        var (host, store) = Create();
        using var _ = host;
        store.Add("a", "KlaviyoRejected");
        var request = new DefaultHttpContext().Request;
        request.QueryString = new QueryString(query);

        var result = await new ReplayDeadLettersFunction(Replayer(host, store)).RunAsync(request, CancellationToken.None);

        var problem = Assert.IsInstanceOfType<ProblemDetails>(Assert.IsInstanceOfType<BadRequestObjectResult>(result).Value);
        Assert.AreEqual(query[1..query.IndexOf('=')], problem.Extensions["field"]);
        Assert.HasCount(1, store.Messages);
    }

    [TestMethod]
    public async Task Replay_OfAThousand_WorksInPagesEachRemovedBeforeTheNextIsReceived()
    {
        var (host, store) = Create();
        using var _ = host;
        for (var i = 0; i < 250; i++)
        {
            store.Add($"m{i}", "KlaviyoRejected");
        }

        var result = await Replayer(host, store).ReplayAsync(1000, null, CancellationToken.None);

        Assert.HasCount(250, result.Moved);
        Assert.IsEmpty(store.Messages);
        var receives = store.Operations.Select((op, index) => (op, index)).Where(x => x.op.StartsWith("receive:", StringComparison.Ordinal)).ToList();
        Assert.AreSequenceEqual(["receive:100", "receive:100", "receive:50", "receive:0"], receives.Select(r => r.op));
        Assert.AreSequenceEqual([0, 101, 202, 253], receives.Select(r => r.index), "every page is removed before the next is received");
    }

    [TestMethod]
    public async Task Replay_WhenALockIsLostMidReplay_AnswersWhatItMovedAndKeepsTheRest()
    {
        var (host, store) = Create();
        using var _ = host;
        for (var i = 0; i < 150; i++)
        {
            store.Add($"m{i}", "KlaviyoRejected");
        }
        store.RemoveFailure = new InvalidOperationException("The lock supplied is invalid.");
        store.FailRemoveAt = 120;

        var result = await Replayer(host, store).ReplayAsync(1000, null, CancellationToken.None);

        Assert.AreEqual("InvalidOperationException: the lock on a dead letter was lost after its copy was queued; the dead letter was kept", result.Interrupted);
        Assert.HasCount(150, result.Moved, "every copy sent is reported, the first page's and the interrupted one's");
        Assert.HasCount(119, result.Moved.Where(m => !m.DeadLetterKept));
        Assert.AreSequenceEqual(store.Messages.Select(m => m.MessageId), result.Moved.Where(m => m.DeadLetterKept).Select(m => m.MessageId));
        Assert.HasCount(150, host.Queue.Sent);
    }

    [TestMethod]
    public async Task Function_WhenTheReplayIsInterrupted_Answers503WithWhatItMoved()
    {
        var (host, store) = Create();
        using var _ = host;
        store.Add("a", "KlaviyoRejected").Add("b", "KlaviyoRejected");
        store.RemoveFailure = new InvalidOperationException("lock lost");
        store.FailRemoveAt = 2;
        var request = new DefaultHttpContext().Request;

        var result = await new ReplayDeadLettersFunction(Replayer(host, store)).RunAsync(request, CancellationToken.None);

        var answer = Assert.IsInstanceOfType<ObjectResult>(result);
        Assert.AreEqual(StatusCodes.Status503ServiceUnavailable, answer.StatusCode);
        var body = Assert.IsInstanceOfType<ReplayDeadLettersFunction.Response>(answer.Value);
        Assert.AreSequenceEqual(["a", "b"], body.Messages.Select(m => m.MessageId));
        Assert.IsTrue(body.Messages[1].DeadLetterKept);
        Assert.IsNotNull(body.Interrupted);
    }
}
