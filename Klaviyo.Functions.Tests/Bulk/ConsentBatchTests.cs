using System.Text;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Bulk;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Tests.Bulk;

/// <summary>Unsubscriptions and list removals in batches against a fake Klaviyo on 127.0.0.1 (spec 8.3, version 4).</summary>
[TestClass]
public sealed class ConsentBatchTests
{
    private const string UnsubscribePath = "/api/profile-subscription-bulk-delete-jobs";
    private const string SubscribePath = "/api/profile-subscription-bulk-create-jobs";
    private const string ImportJobPath = "/api/profile-bulk-import-jobs";

    public TestContext TestContext { get; set; } = null!;

    private static BulkRelayProcessor Processor(RelayTestHost host) => BulkRelayProcessorTests.Processor(host);

    private static DateTimeOffset Deadline(RelayTestHost host) => BulkRelayProcessorTests.Deadline(host);

    private static BatchMessage Identify(int i, string control, string timestamp = "2026-11-20T10:00:00Z") => BatchPlannerTests.Message($"p-{i}",
        "{\"type\":\"identify\",\"messageId\":\"p-" + i + "\",\"userId\":\"p-" + i + "\",\"timestamp\":\"" + timestamp + "\",\"traits\":{\"email\":\"p" + i + "@example.com\",\"properties\":{" + control + "}}}");

    private static JsonArray Profiles(string body) => JsonNode.Parse(body)!["data"]!["attributes"]!["profiles"]!["data"]!.AsArray();

    [TestMethod]
    public async Task Batch_250UnsubscribesToOneList_ThreeCallsOfAtMost100BesideTheImportJob()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(ImportJobPath, 202, "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"job-u\"}}")
            .Answer(UnsubscribePath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var batch = Enumerable.Range(0, 250).Select(i => Identify(i, "\"listId\":\"L1\",\"subscribe\":false")).ToList();

        var decision = await Processor(host).ProcessAsync(batch, Deadline(host), TestContext.CancellationToken);

        Assert.IsTrue(decision.Outcomes.All(o => o is RelayOutcome.AwaitingJob), "each waits for its profile's import job");
        var unsubscribes = klaviyo.Received.Where(r => r.Path == UnsubscribePath).ToList();
        Assert.AreEqual("100,100,50", string.Join(",", unsubscribes.Select(r => Profiles(r.Body).Count)));
        Assert.HasCount(250, unsubscribes.SelectMany(r => Profiles(r.Body)).Select(p => (string?)p!["attributes"]!["email"]).Distinct());
        foreach (var call in unsubscribes)
        {
            Assert.IsEmpty(KlaviyoSchemas.Validate("SubscriptionDeleteJobCreateQuery", Encoding.UTF8.GetBytes(call.Body)));
            Assert.AreEqual("L1", (string?)JsonNode.Parse(call.Body)!["data"]!["relationships"]!["list"]!["data"]!["id"]);
        }
        var job = klaviyo.Received.Single(r => r.Path == ImportJobPath);
        Assert.IsNull(JsonNode.Parse(job.Body)!["data"]!["relationships"], "an unsubscribed profile is not added to the list by its import job");

        // The bulk item is the single call's, by construction.
        var single = ((TransformResult.Planned)Transforms.Run(Encoding.UTF8.GetString(batch[0].Body.Span))).Plan.Steps[1].Build();
        Assert.IsTrue(JsonNode.DeepEquals(Profiles(Encoding.UTF8.GetString(single.Body.Span))[0], Profiles(unsubscribes[0].Body)[0]));
    }

    [TestMethod]
    public async Task Batch_SubscribeThenUnsubscribeOfOneProfile_OnlyTheLaterIsSent()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer(ImportJobPath, 202, "{\"data\":{\"type\":\"profile-bulk-import-job\",\"id\":\"job-s\"}}")
            .Answer(UnsubscribePath, 202)
            .Answer(SubscribePath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        // p-0 subscribes at 10:00 and unsubscribes at 10:05 (sent first, to show time decides, not arrival); nine others fill the batch.
        var batch = new List<BatchMessage>
        {
            Identify(0, "\"listId\":\"L1\",\"subscribe\":false", "2026-11-20T10:05:00Z") with { MessageId = "late" },
            Identify(0, "\"listId\":\"L1\",\"subscribe\":true", "2026-11-20T10:00:00Z") with { MessageId = "early" },
        };
        batch.AddRange(Enumerable.Range(1, 9).Select(i => Identify(i, "\"listId\":\"L1\",\"subscribe\":true")));

        var decision = await Processor(host).ProcessAsync(batch, Deadline(host), TestContext.CancellationToken);

        Assert.IsTrue(decision.Outcomes.All(o => o is RelayOutcome.AwaitingJob), string.Join(", ", decision.Outcomes));
        var subscribed = klaviyo.Received.Where(r => r.Path == SubscribePath).SelectMany(r => Profiles(r.Body)).Select(p => (string?)p!["attributes"]!["email"]).ToList();
        var unsubscribed = klaviyo.Received.Where(r => r.Path == UnsubscribePath).SelectMany(r => Profiles(r.Body)).Select(p => (string?)p!["attributes"]!["email"]).ToList();
        Assert.DoesNotContain("p0@example.com", subscribed);
        Assert.AreEqual("p0@example.com", unsubscribed.Single());
        Assert.HasCount(9, subscribed);
    }

    [TestMethod]
    public async Task Batch_30RemovalsFromOneList_EachImportedThenOneDeleteCarryingEveryProfileId()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerDelete("/api/lists/L1/relationships/profiles", 204);
        for (var i = 0; i < 30; i++)
        {
            klaviyo.Server
                .Given(WireMock.RequestBuilders.Request.Create().WithPath("/api/profile-import").UsingPost().WithBody(new WireMock.Matchers.WildcardMatcher($"*\"p{i}@example.com\"*")))
                .RespondWith(WireMock.ResponseBuilders.Response.Create().WithStatusCode(200).WithBody(FakeKlaviyo.ProfileAnswer($"P{i}")));
        }
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);
        var batch = Enumerable.Range(0, 30).Select(i => Identify(i, "\"listId\":\"L1\",\"removeFromList\":true")).ToList();

        var decision = await Processor(host).ProcessAsync(batch, Deadline(host), TestContext.CancellationToken);

        Assert.IsTrue(decision.Outcomes.All(o => o is RelayOutcome.Delivered), string.Join(", ", decision.Outcomes));
        Assert.IsEmpty(decision.Jobs, "a removal needs a profile id, which only profile-import answers");
        var deletes = klaviyo.Received.Where(r => r.Method == "DELETE").ToList();
        var ids = JsonNode.Parse(deletes.Single().Body)!["data"]!.AsArray().Select(d => (string?)d!["id"]).Order(StringComparer.Ordinal).ToList();
        Assert.AreEqual(string.Join(",", Enumerable.Range(0, 30).Select(i => $"P{i}").Order(StringComparer.Ordinal)), string.Join(",", ids));
        Assert.IsEmpty(KlaviyoSchemas.Validate("ListMembersDeleteQuery", Encoding.UTF8.GetBytes(deletes[0].Body)));
        Assert.AreEqual(30, klaviyo.ReceivedPaths.Count(p => p == "/api/profile-import"));
    }

    [TestMethod]
    public async Task Unsubscribe_403_DeadLettersKlaviyoUnauthorizedNamingTheScopesTheCallNeeds()
    {
        using var klaviyo = FakeKlaviyo.Start()
            .Answer("/api/profile-import", 200, FakeKlaviyo.ProfileAnswer("P0"))
            .Answer(UnsubscribePath, 403, FakeKlaviyo.ErrorAnswer(403, "permission_denied", "You do not have permission to perform this action.", null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcome = await host.Processor.ProcessAsync(Identify(0, "\"listId\":\"L1\",\"subscribe\":false").Body, "p-0", 1, TestContext.CancellationToken);

        var dead = Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcome);
        Assert.AreEqual(DeadLetterReason.KlaviyoUnauthorized, dead.Reason);
        Assert.Contains("POST /api/profile-subscription-bulk-delete-jobs answered 403", dead.Description);
        Assert.Contains("subscriptions:write", dead.Description);
        Assert.DoesNotContain(RelayTestHost.ApiKey, dead.Description);
    }

    [TestMethod]
    public void ListRemovals_1200Profiles_TwoDeleteCallsOfAtMost1000()
    {
        var ids = Enumerable.Range(0, 1200).Select(i => $"01PROFILE{i:D6}").ToList();

        var calls = ListMembersBuilder.Build("L1", ids, remove: true);

        Assert.AreEqual("1000,200", string.Join(",", calls.Select(c => c.Items.Count)));
        foreach (var call in calls)
        {
            Assert.AreEqual(HttpMethod.Delete, call.Request.Method);
            Assert.AreEqual(KlaviyoEndpoint.RemoveProfilesFromList, call.Request.Endpoint);
            KlaviyoSchemas.AssertValid(call.Request);
        }
    }

    [TestMethod]
    public void Limiter_UnsubscriptionsAndRemovals_SpendTheSubscriptionAndListBudgets()
    {
        Assert.AreEqual(KlaviyoEndpoint.SubscribeProfiles, KlaviyoRateLimits.BudgetOf(KlaviyoEndpoint.UnsubscribeProfiles));
        Assert.AreEqual(KlaviyoEndpoint.AddProfilesToList, KlaviyoRateLimits.BudgetOf(KlaviyoEndpoint.RemoveProfilesFromList));
        Assert.AreEqual((75, 750), KlaviyoRateLimits.PublishedLimit(KlaviyoEndpoint.UnsubscribeProfiles));
    }
}
