using System.Text;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.Diagnostics;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Tests.Bulk;

/// <summary>The events path of a batch against a fake Klaviyo on 127.0.0.1 (spec 8.1–8.2).</summary>
[TestClass]
public sealed class BulkRelayProcessorTests
{
    private const string BulkPath = "/api/event-bulk-create-jobs";

    public TestContext TestContext { get; set; } = null!;

    internal static BulkRelayProcessor Processor(RelayTestHost host) => new(
        new BatchPlanner(host.Services.GetRequiredService<KlaviyoTransformer>(), host.Services.GetRequiredService<IOptions<RelayOptions>>()),
        host.Processor, host.Client, host.Services.GetRequiredService<OutcomePolicy>(), host.Services.GetRequiredService<RelayMetrics>(), host.Services.GetRequiredService<IOptions<RelayOptions>>(),
        host.Services.GetRequiredService<TimeProvider>());

    internal static DateTimeOffset Deadline(RelayTestHost host) => host.Services.GetRequiredService<TimeProvider>().GetUtcNow() + TimeSpan.FromMinutes(1);

    private static List<BatchMessage> TenUsers(int attempt = 1) =>
        Enumerable.Range(0, 10).Select(i => BatchPlannerTests.Track($"m-{i}", $"u-{i}") with { Attempt = attempt }).ToList();

    private static JsonArray Entries(string body) => JsonNode.Parse(body)!["data"]!["attributes"]!["events-bulk-create"]!["data"]!.AsArray();

    private static string ExternalIds(string body) =>
        string.Join(",", Entries(body).Select(e => (string?)e!["attributes"]!["profile"]!["data"]!["attributes"]!["external_id"]));

    private static string Errors(params (string Pointer, string Detail)[] errors) =>
        "{\"errors\":[" + string.Join(",", errors.Select(e => $$$"""{"id":"e","status":400,"code":"invalid","title":"Invalid input.","detail":"{{{e.Detail}}}","source":{"pointer":"{{{e.Pointer}}}"}}""")) + "]}";

    [TestMethod]
    public async Task Batch_400PointingAtEntries3And7_OnlyThoseDeadLetteredTheRestDeliveredInTheSameInvocation()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerInTurn(BulkPath,
            (400, Errors(("/data/attributes/events-bulk-create/data/3/attributes/profile/data/attributes/email", "bad identifier 3"),
                         ("/data/attributes/events-bulk-create/data/7/attributes/events/data/0/attributes/time", "bad time 7"))),
            (202, null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await Processor(host).ProcessAsync(TenUsers(), Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.HasCount(10, outcomes);
        var three = Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcomes[3]);
        Assert.AreEqual(DeadLetterReason.KlaviyoRejected, three.Reason);
        Assert.Contains("bad identifier 3", three.Description);
        Assert.Contains("bad time 7", Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcomes[7]).Description);
        Assert.AreEqual(8, outcomes.Count(o => o is RelayOutcome.Delivered));
        var received = klaviyo.Received;
        Assert.AreEqual("/api/event-bulk-create-jobs,/api/event-bulk-create-jobs", string.Join(",", received.Select(r => r.Path)));
        Assert.AreEqual("u-0,u-1,u-2,u-3,u-4,u-5,u-6,u-7,u-8,u-9", ExternalIds(received[0].Body));
        Assert.AreEqual("u-0,u-1,u-2,u-4,u-5,u-6,u-8,u-9", ExternalIds(received[1].Body));
        foreach (var request in received)
        {
            Assert.IsEmpty(KlaviyoSchemas.Validate(KlaviyoSchemas.EventsBulkCreateJob, Encoding.UTF8.GetBytes(request.Body)));
        }
    }

    [TestMethod]
    public async Task Batch_400NamingNoEntry_FallsBackToOneCallPerEvent()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(BulkPath, 400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Invalid input.", null))
            .Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await Processor(host).ProcessAsync(TenUsers(), Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.IsTrue(outcomes.All(o => o is RelayOutcome.Delivered), string.Join(", ", outcomes));
        Assert.ContainsSingle(p => p == BulkPath, klaviyo.ReceivedPaths);
        Assert.AreEqual(10, klaviyo.ReceivedPaths.Count(p => p == "/api/events"));
    }

    [TestMethod]
    public async Task Batch_429WithRetryAfter_EveryMessageRetriesNoSoonerAsTheNextAttempt()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 429, FakeKlaviyo.ErrorAnswer(429, "throttled", "Request was throttled.", null),
            new Dictionary<string, string> { ["Retry-After"] = "120" });
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await Processor(host).ProcessAsync(TenUsers(attempt: 2), Deadline(host), TestContext.CancellationToken)).Outcomes;

        foreach (var outcome in outcomes)
        {
            var retry = Assert.IsInstanceOfType<RelayOutcome.RetryLater>(outcome);
            Assert.AreEqual(3, retry.NextAttempt);
            Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(120), retry.Delay);
        }
        Assert.HasCount(1, klaviyo.Received);
    }

    [TestMethod]
    public async Task Batch_503_EveryMessageRetriesLaterAfterTheInCallRetries()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 503);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await Processor(host).ProcessAsync(TenUsers(), Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.IsTrue(outcomes.All(o => o is RelayOutcome.RetryLater { NextAttempt: 2 }), string.Join(", ", outcomes));
        Assert.HasCount(3, klaviyo.Received, "the first try and two in-call retries");
    }

    [TestMethod]
    public async Task Batch_401_EveryMessageKlaviyoUnauthorized()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 401, FakeKlaviyo.ErrorAnswer(401, "not_authenticated", "Missing or invalid private key.", null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await Processor(host).ProcessAsync(TenUsers(), Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.IsTrue(outcomes.All(o => o is RelayOutcome.DeadLetter { Reason: DeadLetterReason.KlaviyoUnauthorized }), string.Join(", ", outcomes));
        Assert.DoesNotContain(RelayTestHost.ApiKey, string.Join(" ", outcomes.OfType<RelayOutcome.DeadLetter>().Select(d => d.Description)));
    }

    [TestMethod]
    public async Task Batch_RepeatedMessageId_SentOnceAndBothMessagesDelivered()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var batch = TenUsers();
        batch.Add(BatchPlannerTests.Track("m-4", "u-4"));

        var outcomes = (await Processor(host).ProcessAsync(batch, Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.HasCount(11, outcomes);
        Assert.IsTrue(outcomes.All(o => o is RelayOutcome.Delivered));
        var body = klaviyo.Received.Single().Body;
        Assert.AreEqual(10, Entries(body).Sum(e => e!["attributes"]!["events"]!["data"]!.AsArray().Count));
    }

    [TestMethod]
    public async Task Batch_GoodInvalidMalformedAndSkipped_EachItsOwnOutcomeTheGoodDeliveredInOneCall()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var batch = TenUsers();
        batch.Insert(2, BatchPlannerTests.Message("bad", """{"type":"track","messageId":"bad","userId":"u-1"}"""));
        batch.Insert(5, BatchPlannerTests.Message("junk", "{not json"));
        batch.Add(BatchPlannerTests.Message("alias", """{"type":"alias","messageId":"alias","userId":"u-1","previousId":"u-0"}"""));

        var outcomes = (await Processor(host).ProcessAsync(batch, Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.AreEqual(DeadLetterReason.InvalidEvent, Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcomes[2]).Reason);
        Assert.AreEqual(DeadLetterReason.MalformedMessage, Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcomes[5]).Reason);
        Assert.IsInstanceOfType<RelayOutcome.Skipped>(outcomes[12]);
        Assert.AreEqual(10, outcomes.Count(o => o is RelayOutcome.Delivered));
        Assert.AreEqual(BulkPath, klaviyo.ReceivedPaths.Single());
    }

    private static BatchMessage ListedIdentify(int i, string listId, string extraTrait = "") => BatchPlannerTests.Message($"p-{i}",
        "{\"type\":\"identify\",\"messageId\":\"p-" + i + "\",\"userId\":\"p-" + i + "\",\"traits\":{\"email\":\"p" + i + "@example.com\"" + extraTrait + ",\"properties\":{\"listId\":\"" + listId + "\"}}}");

    /// <summary>Profile p-i is answered id P(i+1), whatever order the imports arrive in.</summary>
    private static FakeKlaviyo ProfileImportsAnsweringIds(int count)
    {
        var klaviyo = FakeKlaviyo.Start();
        for (var i = 0; i < count; i++)
        {
            klaviyo.Server
                .Given(WireMock.RequestBuilders.Request.Create().WithPath("/api/profile-import").UsingPost().WithBody(new WireMock.Matchers.WildcardMatcher($"*\"p{i}@example.com\"*")))
                .RespondWith(WireMock.ResponseBuilders.Response.Create().WithStatusCode(200).WithBody(FakeKlaviyo.ProfileAnswer($"P{i + 1}")));
        }
        return klaviyo;
    }

    private static IEnumerable<string> Ids(ReceivedRequest listCall) => JsonNode.Parse(listCall.Body)!["data"]!.AsArray().Select(d => (string)d!["id"]!);

    [TestMethod]
    public async Task Batch_ProfilesInAnImportJob_TheTransformsWarningsAreStillLogged()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/profile-bulk-import-jobs", 202, "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"job-w\"}}");
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var batch = Enumerable.Range(0, 10).Select(i => BatchPlannerTests.Message($"p-{i}",
            "{\"type\":\"identify\",\"messageId\":\"p-" + i + "\",\"userId\":\"p-" + i + "\",\"traits\":{\"email\":\"p" + i + "@example.com\"" + (i == 3 ? ",\"phone\":\"call me maybe\"" : "") + "}}")).ToList();

        var decision = await Processor(host).ProcessAsync(batch, Deadline(host), TestContext.CancellationToken);

        Assert.IsTrue(decision.Outcomes.All(o => o is RelayOutcome.AwaitingJob), string.Join(", ", decision.Outcomes));
        var warned = host.Logs.GetSnapshot().Where(r => r.Id.Id == 3005).ToList();
        Assert.HasCount(1, warned, "the warning of the one odd phone, as the single path would log it");
        Assert.Contains("Event p-3:", warned[0].Message);
        Assert.Contains("not an E.164 phone number", warned[0].Message);
    }

    [TestMethod]
    public async Task Batch_ListAdditionsBelowTheThreshold_OneListCallPerListCarryingEveryProfileId()
    {
        using var klaviyo = ProfileImportsAnsweringIds(5)
            .Answer("/api/lists/L1/relationships/profiles", 204)
            .Answer("/api/lists/L2/relationships/profiles", 204);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var batch = new[] { ListedIdentify(0, "L1"), ListedIdentify(1, "L2"), ListedIdentify(2, "L1"), ListedIdentify(3, "L1"), ListedIdentify(4, "L2") };

        var outcomes = (await Processor(host).ProcessAsync(batch, Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.IsTrue(outcomes.All(o => o is RelayOutcome.Delivered), string.Join(", ", outcomes));
        Assert.AreEqual(5, klaviyo.ReceivedPaths.Count(p => p == "/api/profile-import"), "each profile-import on its own: its answer holds the id");
        var l1 = klaviyo.Received.Single(r => r.Path == "/api/lists/L1/relationships/profiles");
        var l2 = klaviyo.Received.Single(r => r.Path == "/api/lists/L2/relationships/profiles");
        Assert.HasCount(3, Ids(l1));
        Assert.HasCount(2, Ids(l2));
        Assert.AreSequenceEqual(new[] { "P1", "P2", "P3", "P4", "P5" }, Ids(l1).Concat(Ids(l2)).Order(StringComparer.Ordinal));
        Assert.IsEmpty(host.Logs.GetSnapshot().Where(r => r.Id.Id == 3005).ToList(), "no transform warning for these profiles");
        KlaviyoSchemas.AssertValid(new KlaviyoRequest(KlaviyoEndpoint.AddProfilesToList, l1.Path, Encoding.UTF8.GetBytes(l1.Body)));
    }

    [TestMethod]
    public async Task Batch_GroupedListCallRefused_RepeatedPerProfileSoOnlyTheRefusedOneIsDeadLettered()
    {
        using var klaviyo = ProfileImportsAnsweringIds(3)
            .AnswerInTurn("/api/lists/L1/relationships/profiles",
                (400, FakeKlaviyo.ErrorAnswer(400, "invalid", "One profile id is not valid.", "/data")),
                (204, null), (400, FakeKlaviyo.ErrorAnswer(400, "invalid", "Profile id is not valid.", "/data/0/id")), (204, null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await Processor(host).ProcessAsync([ListedIdentify(0, "L1"), ListedIdentify(1, "L1", ",\"phone\":\"call me maybe\""), ListedIdentify(2, "L1")], Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.AreEqual(2, outcomes.Count(o => o is RelayOutcome.Delivered));
        var refused = outcomes.OfType<RelayOutcome.DeadLetter>().Single();
        Assert.AreEqual(DeadLetterReason.KlaviyoRejected, refused.Reason);
        Assert.Contains("Profile id is not valid.", refused.Description);
        Assert.AreEqual(4, klaviyo.ReceivedPaths.Count(p => p == "/api/lists/L1/relationships/profiles"), "one grouped call, then one per profile");
        Assert.Contains("Event p-1:", host.Logs.GetSnapshot().Single(r => r.Id.Id == 3005).Message, "the grouped path logs the transform's warning too");
    }

    [TestMethod]
    public async Task Batch_BelowTheThreshold_SingleCallsAsBefore()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer("/api/events", 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcomes = (await Processor(host).ProcessAsync(TenUsers().Take(9).ToList(), Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.IsTrue(outcomes.All(o => o is RelayOutcome.Delivered));
        Assert.AreEqual(9, klaviyo.ReceivedPaths.Count(p => p == "/api/events"));
    }

    [TestMethod]
    public async Task Batch_BulkCallHeldBackByTheRelaysLimiter_EveryMessagePutOffWithItsAttemptUnchanged()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(BulkPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        host.Services.GetRequiredService<global::Klaviyo.Functions.Klaviyo.KlaviyoRateLimits>().Pause(global::Klaviyo.Functions.Klaviyo.KlaviyoEndpoint.BulkCreateEvents, TimeSpan.FromSeconds(30));

        var outcomes = (await Processor(host).ProcessAsync(TenUsers(attempt: 5), Deadline(host), TestContext.CancellationToken)).Outcomes;

        Assert.IsTrue(outcomes.All(o => o is RelayOutcome.RetryLater { NextAttempt: 5 }), string.Join(", ", outcomes));
        Assert.IsEmpty(klaviyo.Received);
    }
}
