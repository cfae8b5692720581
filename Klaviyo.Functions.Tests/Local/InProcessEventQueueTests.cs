using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Local;
using Klaviyo.Functions.Queue;
using Microsoft.Extensions.Time.Testing;

namespace Klaviyo.Functions.Tests.Local;

[TestClass]
public sealed class InProcessEventQueueTests
{
    public TestContext TestContext { get; set; } = null!;

    private static QueuedEvent Event(string id, int attempt = 1) => new(id, "track", Encoding.UTF8.GetBytes($$"""{"messageId":"{{id}}"}"""), attempt);

    [TestMethod]
    public async Task Schedule_BeforeItsTime_IsNotReadyThenBecomesReady()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-28T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        using var queue = new InProcessEventQueue(time);

        await queue.ScheduleAsync(Event("m-1/attempt-2", 2), time.GetUtcNow().AddSeconds(30), TestContext.CancellationToken);
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.IsFalse(queue.Reader.TryRead(out _));
        Assert.AreEqual(1, queue.ScheduledCount);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.IsTrue(queue.Reader.TryRead(out var ready));
        Assert.AreEqual("m-1/attempt-2", ready.MessageId);
        Assert.AreEqual(2, ready.Attempt);
        Assert.AreEqual(0, queue.ScheduledCount);
    }

    [TestMethod]
    public async Task Close_ReturnsReadyAndScheduledEventsAndRefusesNewOnes()
    {
        var time = new FakeTimeProvider();
        using var queue = new InProcessEventQueue(time);
        await queue.SendAsync([Event("m-1"), Event("m-2")], TestContext.CancellationToken);
        await queue.ScheduleAsync(Event("m-3/attempt-2", 2), time.GetUtcNow().AddMinutes(2), TestContext.CancellationToken);

        var left = queue.Close();

        Assert.AreSequenceEqual(new[] { "m-1", "m-2", "m-3/attempt-2" }, left.Select(e => e.MessageId).Order(StringComparer.Ordinal).ToArray());
        await Assert.ThrowsExactlyAsync<QueueClosedException>(() => queue.SendAsync([Event("m-4")], TestContext.CancellationToken));
        await Assert.ThrowsExactlyAsync<QueueClosedException>(() => queue.ScheduleAsync(Event("m-5"), time.GetUtcNow(), TestContext.CancellationToken));
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.IsFalse(queue.Reader.TryRead(out _), "a closed queue releases nothing");
    }

    [TestMethod]
    public void QueueClosed_IsAQueueFault_SoTheIngestAnswers503()
    {
        Assert.IsInstanceOfType<QueueUnavailableException>(new QueueClosedException());
    }

    [TestMethod]
    public void DeadLetterLine_HoldsTheSpecFieldsAndTheEventAsJson()
    {
        var line = DeadLetterFile.Format("m-1", "InvalidEvent", "event: must be a string", 3,
            DateTimeOffset.Parse("2026-11-28T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture), Encoding.UTF8.GetBytes("""{"type":"track","event":7}"""));

        Assert.EndsWith("\n", line);
        using var json = JsonDocument.Parse(line);
        var root = json.RootElement;
        Assert.AreEqual("m-1", root.GetProperty("messageId").GetString());
        Assert.AreEqual("InvalidEvent", root.GetProperty("reason").GetString());
        Assert.AreEqual("event: must be a string", root.GetProperty("description").GetString());
        Assert.AreEqual(3, root.GetProperty("attempt").GetInt32());
        Assert.AreEqual("2026-11-28T12:00:00.000Z", root.GetProperty("deadLetteredAt").GetString());
        Assert.AreEqual(7, root.GetProperty("event").GetProperty("event").GetInt32());
    }

    [TestMethod]
    [DataRow("{\"type\":", DisplayName = "truncated JSON")]
    [DataRow("not json", DisplayName = "plain text")]
    [DataRow("{} {}", DisplayName = "two values")]
    public void DeadLetterLine_WithABodyThatIsNotOneJsonValue_KeepsItAsAString(string body)
    {
        var line = DeadLetterFile.Format("m-2", "MalformedMessage", null, 1, DateTimeOffset.UnixEpoch, Encoding.UTF8.GetBytes(body));

        using var json = JsonDocument.Parse(line);
        Assert.AreEqual(body, json.RootElement.GetProperty("event").GetString());
    }

    [TestMethod]
    public void LocalOptions_OutOfRange_NameTheSetting()
    {
        var failures = new LocalOptionsValidator().Validate(null, new LocalOptions { DeadLetterPath = " ", Concurrency = 0, ShutdownGrace = TimeSpan.FromMinutes(6) }).Failures!.ToList();

        Assert.HasCount(3, failures);
        Assert.Contains("Local__DeadLetterPath is required", failures);
        Assert.Contains(f => f.StartsWith("Local__Concurrency:", StringComparison.Ordinal), failures);
        Assert.Contains(f => f.StartsWith("Local__ShutdownGrace:", StringComparison.Ordinal), failures);
    }
}
