using System.Diagnostics;
using System.Text;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Queue;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Klaviyo;

/// <summary>
/// A Klaviyo that stalls, lies and breaks off (a raw HTTP server on loopback), through the real queue trigger, transform
/// and HttpClient pipeline. Each fault's outcome is asserted, and so is the relay still delivering later events.
/// Every delivery is awaited with a deadline, so a freeze fails the test instead of hanging it. On real time, not
/// simulated: a stall must meet the attempt timeout on a real socket after the client has read what came before it.
/// </summary>
[TestClass]
public sealed class KlaviyoFaultTests
{
    private const string EventsPath = "/api/events";
    private const string ProfileImportPath = "/api/profile-import";
    private const string ListPath = "/api/lists/Xy12/relationships/profiles";
    private const int HugeBytes = 8 * 1024 * 1024;

    /// <summary>Deadline for one delivery: far above the worst case of these settings (2 tries × 1 s + waits).</summary>
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["Relay:AttemptTimeout"] = "00:00:01",
        ["Relay:MaxInCallRetries"] = "1",
    };

    public TestContext TestContext { get; set; } = null!;

    private static string Track(string messageId) =>
        $$$"""{"type":"track","event":"Order Completed","userId":"u1","messageId":"{{{messageId}}}","timestamp":"2026-11-01T10:00:00Z","properties":{"revenue":12.5}}""";

    private static string Identify(string messageId) =>
        """{"type":"identify","userId":"u1","messageId":"MID","traits":{"email":"a@example.com","properties":{"listId":"Xy12"}}}""".Replace("MID", messageId, StringComparison.Ordinal);

    private async Task<(Settlement Settlement, QueuedEvent? Copy, TimeSpan Took)> RelayAsync(RelayTestHost host, string json, string messageId, string subject = "track")
    {
        var actions = new RecordingMessageActions();
        var scheduledBefore = host.Queue.Scheduled.Count;
        var clock = Stopwatch.StartNew();
        await host.Function.RunAsync(RelayTestHost.Message(json, messageId, subject: subject), actions, TestContext.CancellationToken)
            .WaitAsync(Deadline, TestContext.CancellationToken);
        var copy = host.Queue.Scheduled.Count > scheduledBefore ? host.Queue.Scheduled[^1].Event : null;
        return (actions.Calls.Single(), copy, clock.Elapsed);
    }

    /// <summary>Three later events of both kinds, each delivered against the now healthy fake.</summary>
    private async Task AssertLaterEventsDeliveredAsync(RelayTestHost host, FaultyKlaviyo klaviyo)
    {
        for (var i = 0; i < 3; i++)
        {
            var track = await RelayAsync(host, Track($"later-t{i}"), $"later-t{i}");
            Assert.AreEqual(new Settlement("Complete", $"later-t{i}", null, null), track.Settlement);
            var identify = await RelayAsync(host, Identify($"later-i{i}"), $"later-i{i}", "identify");
            Assert.AreEqual(new Settlement("Complete", $"later-i{i}", null, null), identify.Settlement);
        }
        Assert.Contains($"\"id\":\"{FaultyKlaviyo.ProfileId}\"", klaviyo.Received.Last(r => r.Path == ListPath).Body);
    }

    [TestMethod]
    public async Task BodyStall_After202OnEvents_DeliveredOnceWithinTheAttemptTimeout()
    {
        // Main: the body was read outside every timeout, so the delivery never finished.
        using var klaviyo = FaultyKlaviyo.Start().Then(EventsPath, new Fault.StallBody(202, "{\"da", 100));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, took) = await RelayAsync(host, Track("m-1"), "m-1");

        Assert.AreEqual(new Settlement("Complete", "m-1", null, null), settlement, "Klaviyo answered 202: the event is in");
        Assert.IsNull(copy);
        Assert.AreEqual(1, klaviyo.Count(EventsPath), "a 2xx is never sent twice");
        Assert.IsLessThan(TimeSpan.FromSeconds(5), took);
        Assert.Contains("POST /api/events answered 202, then the answer's body stalled past Relay__AttemptTimeout", host.AllLogText());
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    public async Task BodyStall_After200OnProfileImport_RetriedLaterAsATransientFailure()
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(ProfileImportPath, new Fault.StallBody(200, "{\"data\":{\"type\":\"profile\",", 200));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, took) = await RelayAsync(host, Identify("m-2"), "m-2", "identify");

        Assert.AreEqual("Complete", settlement.Action);
        Assert.IsNotNull(copy, "the profile id never came: the event is retried later");
        Assert.AreEqual(2, copy.Attempt);
        Assert.AreEqual(0, klaviyo.Count(ListPath), "no list call without the profile id");
        Assert.IsLessThan(TimeSpan.FromSeconds(5), took);
        Assert.Contains("Event m-2 attempt 1 failed transiently", host.AllLogText());
        Assert.Contains("POST /api/profile-import answered 200, but the answer's body stalled past Relay__AttemptTimeout before data.id", host.AllLogText());
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    public async Task BodyStall_On503_RetriedInTheCallLikeATimeout()
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(EventsPath, new Fault.StallBody(503, "{\"errors\":[", 500));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, _) = await RelayAsync(host, Track("m-3"), "m-3");

        Assert.AreEqual(new Settlement("Complete", "m-3", null, null), settlement);
        Assert.IsNull(copy, "the in-call retry got the normal answer");
        Assert.AreEqual(2, klaviyo.Count(EventsPath));
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    public async Task BodyStalls_SixteenAtOnce_LaterEventsStillDelivered()
    {
        // The reliability test's finding: 16 stalled answers, then 0 of 25 later events delivered.
        using var klaviyo = FaultyKlaviyo.Start().Then(EventsPath, new Fault.StallBody(202, "{", 50), times: 16);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, new Dictionary<string, string?>(Settings) { ["Relay:AttemptTimeout"] = "00:00:02" }, time: TimeProvider.System);

        var stalled = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => RelayAsync(host, Track($"s-{i}"), $"s-{i}")));
        var later = await Task.WhenAll(Enumerable.Range(0, 25).Select(i => RelayAsync(host, Track($"l-{i}"), $"l-{i}")));

        Assert.IsTrue(stalled.All(r => r.Settlement.Action == "Complete" && r.Copy is null));
        Assert.IsTrue(later.All(r => r.Settlement.Action == "Complete" && r.Copy is null));
        var sent = klaviyo.Received.Where(r => r.Path == EventsPath).ToList();
        Assert.IsTrue(Enumerable.Range(0, 16).All(i => sent.Count(r => r.Body.Contains($"\"unique_id\":\"s-{i}\"", StringComparison.Ordinal)) == 1), "a 2xx is never sent twice");
    }

    [TestMethod]
    public async Task HugeBody_On200FromProfileImport_DeliveredOnceWithTheIdThatComesFirst()
    {
        // Main: a body over 1 MB was a "connection failure", and profile-import was sent again on every attempt.
        using var klaviyo = FaultyKlaviyo.Start().Then(ProfileImportPath, new Fault.HugeBody(
            200, "{\"data\":{\"type\":\"profile\",\"id\":\"01HUGE\",\"attributes\":{\"blob\":\"", "\"}}}", HugeBytes));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, _) = await RelayAsync(host, Identify("m-4"), "m-4", "identify");

        Assert.AreEqual(new Settlement("Complete", "m-4", null, null), settlement);
        Assert.IsNull(copy);
        Assert.AreEqual(1, klaviyo.Count(ProfileImportPath), "a 2xx is never sent twice");
        Assert.Contains("\"id\":\"01HUGE\"", klaviyo.Received.Single(r => r.Path == ListPath).Body);
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    public async Task HugeBody_On202FromEvents_DeliveredOnce()
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(EventsPath, new Fault.HugeBody(202, "{\"meta\":\"", "\"}", HugeBytes));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, _) = await RelayAsync(host, Track("m-5"), "m-5");

        Assert.AreEqual(new Settlement("Complete", "m-5", null, null), settlement);
        Assert.IsNull(copy);
        Assert.AreEqual(1, klaviyo.Count(EventsPath));
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    public async Task HugeBody_IdBeyondTheScanBound_DeadLetteredKlaviyoRejectedAndNotResent()
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(ProfileImportPath, new Fault.HugeBody(
            200, "{\"data\":{\"type\":\"profile\",\"attributes\":{\"blob\":\"", "\"},\"id\":\"01LATE\"}}", 2 * KlaviyoAnswerHandler.MaxDataIdScanBytes));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, _) = await RelayAsync(host, Identify("m-6"), "m-6", "identify");

        Assert.AreEqual("DeadLetter", settlement.Action);
        Assert.AreEqual("KlaviyoRejected", settlement.Reason);
        Assert.AreEqual("POST /api/profile-import answered 2xx without data.id (the profile id later calls need)", settlement.Description);
        Assert.IsNull(copy);
        Assert.AreEqual(1, klaviyo.Count(ProfileImportPath));
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    public async Task HugeBody_On400_RejectedWithKlaviyosDetailAndNotRetried()
    {
        // Main: an error body over 1 MB became a connection failure, retried as if transient.
        var error = FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid input.", "/data/attributes/metric");
        using var klaviyo = FaultyKlaviyo.Start().Then(EventsPath, new Fault.Answer(400, error + new string(' ', 3 * 1024 * 1024)));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, _) = await RelayAsync(host, Track("m-7"), "m-7");

        Assert.AreEqual(new Settlement("DeadLetter", "m-7", "KlaviyoRejected", "POST /api/events answered 400: invalid: Invalid input. (pointer /data/attributes/metric)"), settlement);
        Assert.IsNull(copy);
        Assert.AreEqual(1, klaviyo.Count(EventsPath));
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    public async Task SlowHeaders_PastTheAttemptTimeoutOnEveryTry_RetriedLater()
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(EventsPath, new Fault.SlowHeaders(TimeSpan.FromSeconds(6)), times: 2);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, took) = await RelayAsync(host, Track("m-8"), "m-8");

        Assert.AreEqual(new Settlement("Complete", "m-8", null, null), settlement);
        Assert.IsNotNull(copy);
        Assert.AreEqual(2, copy.Attempt);
        Assert.IsLessThan(TimeSpan.FromSeconds(5), took, "two tries of 1 s, not the 6 s the fake takes");
        Assert.Contains("Event m-8 attempt 1 failed transiently", host.AllLogText());
        Assert.Contains("POST /api/events: timed out", host.AllLogText());
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    public async Task ResetMidBody_After202OnEvents_DeliveredOnce()
    {
        // Main: the reset while buffering was a connection failure, so the accepted event was sent again.
        using var klaviyo = FaultyKlaviyo.Start().Then(EventsPath, new Fault.ResetMidBody(202, "{\"da", 100));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, _) = await RelayAsync(host, Track("m-9"), "m-9");

        Assert.AreEqual(new Settlement("Complete", "m-9", null, null), settlement);
        Assert.IsNull(copy);
        Assert.AreEqual(1, klaviyo.Count(EventsPath), "a 2xx is never sent twice");
        Assert.Contains("POST /api/events answered 202, then the connection was lost while reading the answer's body", host.AllLogText());
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    public async Task ResetMidBody_After200OnProfileImport_RetriedLater()
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(ProfileImportPath, new Fault.ResetMidBody(200, "{\"data\":{\"type\":\"pro", 200));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, _) = await RelayAsync(host, Identify("m-10"), "m-10", "identify");

        Assert.AreEqual("Complete", settlement.Action);
        Assert.IsNotNull(copy);
        Assert.AreEqual(1, klaviyo.Count(ProfileImportPath));
        Assert.AreEqual(0, klaviyo.Count(ListPath));
        Assert.Contains("but the connection was lost while reading the answer's body before data.id", host.AllLogText());
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    [DataRow("<html>502 Bad Gateway</html>")]
    [DataRow("{\"data\":")]
    [DataRow("\u00ff\u00fe garbage")]
    public async Task GarbageJson_On202FromEvents_Delivered(string body)
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(EventsPath, new Fault.Answer(202, body));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, _) = await RelayAsync(host, Track("m-11"), "m-11");

        Assert.AreEqual(new Settlement("Complete", "m-11", null, null), settlement);
        Assert.IsNull(copy);
        Assert.AreEqual(1, klaviyo.Count(EventsPath));
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }

    [TestMethod]
    [DataRow("<html>oops</html>")]
    [DataRow("{\"data\":{\"type\":\"profile\",\"id\":")]
    [DataRow("{\"data\":{\"type\":\"profile\",\"attributes\":{\"id\":\"nested-is-not-it\"}}}")]
    [DataRow("{\"data\":null}")]
    public async Task GarbageJson_On200FromProfileImport_DeadLetteredKlaviyoRejected(string body)
    {
        using var klaviyo = FaultyKlaviyo.Start().Then(ProfileImportPath, new Fault.Answer(200, body));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, Settings, time: TimeProvider.System);

        var (settlement, copy, _) = await RelayAsync(host, Identify("m-12"), "m-12", "identify");

        Assert.AreEqual(new Settlement("DeadLetter", "m-12", "KlaviyoRejected", "POST /api/profile-import answered 2xx without data.id (the profile id later calls need)"), settlement);
        Assert.IsNull(copy);
        Assert.AreEqual(1, klaviyo.Count(ProfileImportPath));
        await AssertLaterEventsDeliveredAsync(host, klaviyo);
    }
}

[TestClass]
public sealed class DataIdScannerTests
{
    [TestMethod]
    [DataRow("""{"data":{"type":"profile","id":"01P","attributes":{}}}""", "01P")]
    [DataRow("""{"links":{"id":"no"},"data":{"attributes":{"id":"no"},"id":"01P"}}""", "01P")]
    [DataRow("""{"data":{"type":"profile","attributes":{"id":"no"}}}""", null)]
    [DataRow("""{"data":[{"id":"no"}]}""", null)]
    [DataRow("""{"data":{"id":7}}""", null)]
    [DataRow("""{"data":{"id":""}}""", null)]
    [DataRow("""[{"data":{"id":"no"}}]""", null)]
    [DataRow("""not json""", null)]
    public void Feed_ByteByByte_FindsOnlyTheRootDataId(string json, string? expected)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var scanner = new DataIdScanner();
        var pending = new List<byte>();
        var result = DataIdScanner.Result.NeedMore;
        for (var i = 0; i <= bytes.Length && result == DataIdScanner.Result.NeedMore; i++)
        {
            if (i < bytes.Length)
            {
                pending.Add(bytes[i]);
            }
            result = scanner.Feed(pending.ToArray(), i == bytes.Length, out var consumed);
            pending.RemoveRange(0, consumed);
        }

        Assert.AreEqual(expected is null ? DataIdScanner.Result.NotThere : DataIdScanner.Result.Found, result);
        Assert.AreEqual(expected, scanner.DataId);
    }
}
