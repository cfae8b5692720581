using System.Text;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Relay;
using Klaviyo.Functions.Settings;
using Klaviyo.Functions.Tests.TestSupport;
using Klaviyo.Functions.Transform;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Tests.Privacy;

/// <summary>Deletions (spec 5.7, 8) against a fake Klaviyo on 127.0.0.1, on simulated time.</summary>
[TestClass]
public sealed class DeletionRelayTests
{
    private const string JobsPath = "/api/data-privacy-deletion-jobs";
    private const string Email = "Jane.Secret@example.com";
    private const string Phone = "+15005550006";

    public TestContext TestContext { get; set; } = null!;

    private static readonly Dictionary<string, string?> DeleteEventsOn = new() { ["Privacy:DeleteEvents"] = "true" };

    private static string Delete(string messageId, string? userId = null, string? email = null, string? phone = null, bool admin = false)
    {
        var json = new JsonObject { ["type"] = "delete", ["messageId"] = messageId };
        if (userId is not null)
        {
            json["userId"] = userId;
        }
        if (email is not null || phone is not null)
        {
            json["traits"] = new JsonObject { ["email"] = email, ["phone"] = phone };
        }
        if (admin)
        {
            json["adminRequest"] = true;
        }
        return json.ToJsonString();
    }

    private static string Page(string? next, params string[] ids) =>
        new JsonObject
        {
            ["data"] = new JsonArray([.. ids.Select(id => (JsonNode)new JsonObject { ["type"] = "profile", ["id"] = id, ["attributes"] = new JsonObject { ["external_id"] = "u-42" } })]),
            ["links"] = new JsonObject { ["self"] = "x", ["next"] = next },
        }.ToJsonString();

    private Task<RelayOutcome> Process(RelayTestHost host, string json, string messageId) =>
        host.Processor.ProcessAsync(Encoding.UTF8.GetBytes(json), messageId, 1, TestContext.CancellationToken);

    private static IReadOnlyList<string> JobIdentifiers(FakeKlaviyo klaviyo) =>
        [.. klaviyo.Received.Where(r => r.Path == JobsPath).Select(r =>
        {
            var data = JsonNode.Parse(r.Body)!["data"]!["attributes"]!["profile"]!["data"]!;
            return (string?)data["id"] ?? (string?)data["attributes"]!["email"] ?? (string)data["attributes"]!["phone_number"]!;
        })];

    [TestMethod]
    public async Task Deletion_ByUserIdWhoseLookupHasTwoPages_SendsOneJobPerProfileFound()
    {
        using var klaviyo = FakeKlaviyo.Start();
        klaviyo.AnswerGet("/api/profiles", 200, Page(klaviyo.BaseUrl + "/api/profiles?page[cursor]=c2&page[size]=100", "P1", "P2"))
            .AnswerGet("/api/profiles", 200, Page(null, "P3"), query: ("page[cursor]", "c2"))
            .Answer(JobsPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, DeleteEventsOn);

        var outcome = await Process(host, Delete("d-1", userId: "u-42"), "d-1");

        Assert.AreEqual(new RelayOutcome.Delivered(5), outcome);
        var urls = klaviyo.Server.LogEntries.OrderBy(e => e.RequestMessage.DateTime).Select(e => $"{e.RequestMessage.Method} {e.RequestMessage.Url}").ToList();
        Assert.StartsWith("GET " + klaviyo.BaseUrl + "/api/profiles?filter=", urls[0]);
        Assert.Contains("filter=equals%28external_id%2C", urls[0]);
        Assert.Contains("u-42", urls[0]);
        Assert.Contains("c2", urls[1], "the second page is the one links.next named");
        Assert.AreSequenceEqual(["P1", "P2", "P3"], JobIdentifiers(klaviyo));
        foreach (var job in klaviyo.Received.Where(r => r.Path == JobsPath))
        {
            Assert.IsEmpty(KlaviyoSchemas.Validate(KlaviyoEndpoint.RequestDeletion, Encoding.UTF8.GetBytes(job.Body)), job.Body);
        }
        Assert.Contains("3 deletion job(s) requested", host.AllLogText());
    }

    [TestMethod]
    public async Task Deletion_ByEmailPhoneAndUserId_SendsOneJobPerIdentifierAndPerProfile()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet("/api/profiles", 200, Page(null, "P1")).Answer(JobsPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, DeleteEventsOn);

        var outcome = await Process(host, Delete("d-2", userId: "u-42", email: Email, phone: "+1 500 555 0006"), "d-2");

        Assert.AreEqual(new RelayOutcome.Delivered(4), outcome);
        Assert.AreSequenceEqual([Email, Phone, "P1"], JobIdentifiers(klaviyo));
    }

    [TestMethod]
    public async Task Deletion_UserIdWithNoProfile_IsDeliveredWithALogLineSayingSo()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet("/api/profiles", 200, Page(null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, DeleteEventsOn);

        var outcome = await Process(host, Delete("d-3", userId: "u-nobody"), "d-3");

        Assert.AreEqual(new RelayOutcome.Delivered(1), outcome);
        Assert.IsEmpty(JobIdentifiers(klaviyo));
        Assert.Contains(r => r.Id.Id == 3071 && r.Message.Contains("nothing to delete", StringComparison.Ordinal), host.Logs.GetSnapshot());
    }

    [TestMethod]
    public async Task Deletion_LinksNextToAnotherHost_IsNotFollowedAndNothingIsDeleted()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(JobsPath, 202);
        klaviyo.AnswerGet("/api/profiles", 200, Page("https://elsewhere.example/api/profiles?page%5Bcursor%5D=c2", "P1"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, DeleteEventsOn);

        var outcome = await Process(host, Delete("d-4", userId: "u-42"), "d-4");

        var retry = Assert.IsInstanceOfType<RelayOutcome.RetryLater>(outcome, "a lookup that cannot be read whole deletes nothing and is tried again");
        Assert.Contains("another host", retry.Cause);
        Assert.AreEqual(2, retry.NextAttempt);
        Assert.AreSequenceEqual(["/api/profiles"], klaviyo.ReceivedPaths);
    }

    [TestMethod]
    public async Task Deletions_TwentyInARow_NeverMoreThanThreeJobsInAnySecond()
    {
        var sent = new List<DateTimeOffset>();
        using var klaviyo = FakeKlaviyo.Start().Answer(JobsPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, DeleteEventsOn, services =>
            services.AddHttpClient<KlaviyoClient>().AddHttpMessageHandler(sp => new StampingHandler(sp.GetRequiredService<TimeProvider>(), sent)));

        var outcomes = new List<RelayOutcome>();
        for (var i = 0; i < 20; i++)
        {
            outcomes.Add(await Process(host, Delete($"r-{i}", email: $"person{i}@example.com"), $"r-{i}"));
        }

        Assert.IsTrue(outcomes.All(o => o is RelayOutcome.Delivered), string.Join(", ", outcomes));
        Assert.HasCount(20, sent);
        for (var i = 3; i < sent.Count; i++)
        {
            Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(1), sent[i] - sent[i - 3], $"jobs {i - 3} and {i} went within one second: more than 3/s");
        }
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(6), sent[^1] - sent[0], "20 jobs at 3/s take over 6 s of (simulated) time");
    }

    [TestMethod]
    public async Task Deletions_InABatchAtTheBulkThreshold_GoOneJobEachAndNeverThroughABulkEndpoint()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(JobsPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, DeleteEventsOn);
        var planner = new BatchPlanner(host.Services.GetRequiredService<KlaviyoTransformer>(), host.Services.GetRequiredService<IOptions<RelayOptions>>());
        var batch = Enumerable.Range(0, 12).Select(i => new BatchMessage($"b-{i}", Encoding.UTF8.GetBytes(Delete($"b-{i}", email: $"p{i}@example.com")), 1)).ToList();

        var plan = planner.Plan(batch);

        Assert.AreSequenceEqual(Enumerable.Range(0, 12), plan.Singles.Select(s => s.Message));
        Assert.IsTrue(plan.Singles.All(s => s.Parts is DeletionParts));
        Assert.IsEmpty(plan.EventCalls);
        Assert.IsEmpty(plan.ImportJobs);
        Assert.IsEmpty(plan.Failed);
    }

    [TestMethod]
    public async Task Deletion_Answered403_DeadLettersUnauthorizedNamingTheDataPrivacyScope()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(JobsPath, 403, FakeKlaviyo.ErrorAnswer(403, "permission_denied", "You do not have permission to perform this action.", null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, DeleteEventsOn);
        var actions = new RecordingMessageActions();

        await host.Function.RunAsync(RelayTestHost.Message(Delete("d-5", email: Email), "d-5", subject: "delete"), actions, TestContext.CancellationToken);

        var settlement = actions.Calls.Single();
        Assert.AreEqual("DeadLetter", settlement.Action);
        Assert.AreEqual("KlaviyoUnauthorized", settlement.Reason);
        Assert.Contains("data-privacy:write", settlement.Description!);
        Assert.Contains("POST /api/data-privacy-deletion-jobs answered 403", settlement.Description!);
    }

    [TestMethod]
    public async Task Deletion_LookupAnswered403_DeadLettersUnauthorizedNamingTheProfilesReadScope()
    {
        using var klaviyo = FakeKlaviyo.Start().AnswerGet("/api/profiles", 403, FakeKlaviyo.ErrorAnswer(403, "permission_denied", "Denied.", null));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, DeleteEventsOn);

        var outcome = await Process(host, Delete("d-6", userId: "u-42"), "d-6");

        var dead = Assert.IsInstanceOfType<RelayOutcome.DeadLetter>(outcome);
        Assert.AreEqual(DeadLetterReason.KlaviyoUnauthorized, dead.Reason);
        Assert.Contains("profiles:read", dead.Description);
        Assert.StartsWith("GET /api/profiles answered 403", dead.Description, "the lookup's filter (the person's id) stays out");
    }

    [TestMethod]
    public async Task Deletion_DeleteEventsOff_IsSkippedWithAWarningAndCallsNothing()
    {
        using var klaviyo = FakeKlaviyo.Start();
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcome = await Process(host, Delete("d-7", email: Email), "d-7");

        Assert.AreEqual(new RelayOutcome.Skipped(DeletionProcessor.SkipReason), outcome);
        Assert.Contains(r => r.Level == LogLevel.Warning && r.Message.Contains("Privacy__DeleteEvents is false", StringComparison.Ordinal), host.Logs.GetSnapshot());
        Assert.IsEmpty(klaviyo.Received);
    }

    [TestMethod]
    public async Task Deletion_FromTheAdminRouteWithDeleteEventsOff_IsStillDelivered()
    {
        using var klaviyo = FakeKlaviyo.Start().Answer(JobsPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl);

        var outcome = await Process(host, Delete("d-8", email: Email, admin: true), "d-8");

        Assert.AreEqual(new RelayOutcome.Delivered(1), outcome);
        Assert.AreSequenceEqual([Email], JobIdentifiers(klaviyo));
    }

    [TestMethod]
    public async Task Deletions_WhateverKlaviyoAnswers_NoLogLineNorDeadLetterDescriptionHoldsTheEmailOrPhone()
    {
        // Klaviyo quoting the identifiers back in an error is the case that would leak them.
        var quotesEmail = FakeKlaviyo.ErrorAnswer(400, "invalid", $"{Email.ToLowerInvariant()} is not a valid email", "/data/attributes/profile");
        var quotesPhone = FakeKlaviyo.ErrorAnswer(400, "invalid", $"{Phone} is not a valid phone number", "/data/attributes/profile");
        using var klaviyo = FakeKlaviyo.Start().AnswerInTurn(JobsPath, (202, null), (202, null), (400, quotesEmail), (400, quotesPhone))
            .AnswerGet("/api/profiles", 200, Page(null, "P1"));
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, DeleteEventsOn);
        var actions = new RecordingMessageActions();

        await host.Function.RunAsync(RelayTestHost.Message(Delete("l-1", userId: "u-42", email: Email), "l-1", subject: "delete"), actions, TestContext.CancellationToken);
        await host.Function.RunAsync(RelayTestHost.Message(Delete("l-2", email: Email, phone: "+1 (500) 555-0006"), "l-2", subject: "delete"), actions, TestContext.CancellationToken);
        await host.Function.RunAsync(RelayTestHost.Message(Delete("l-3", phone: Phone), "l-3", subject: "delete"), actions, TestContext.CancellationToken);

        Assert.AreSequenceEqual(["Complete", "DeadLetter", "DeadLetter"], actions.Calls.Select(c => c.Action));
        var logs = host.AllLogText();
        Assert.Contains("l-2", logs, "the scan reads the log lines of these deletions");
        foreach (var secret in new[] { Email, Email.ToLowerInvariant(), Phone, "5005550006" })
        {
            Assert.DoesNotContain(secret, logs, StringComparison.OrdinalIgnoreCase);
            foreach (var call in actions.Calls)
            {
                Assert.DoesNotContain(secret, call.Description ?? "", StringComparison.OrdinalIgnoreCase);
            }
        }
        Assert.Contains("[email sha256:", actions.Calls[1].Description!, "a hash stands in where Klaviyo quoted the email");
        Assert.Contains("[phone sha256:", actions.Calls[2].Description!);
    }

    [TestMethod]
    public async Task Deletion_WhoseCallsWouldOutlastTheMessageLock_IsPutOffWithoutSpendingAnAttempt()
    {
        // One try per call of at most 30 s: a call takes up to 31 s, and a batch guarantees a delivery 2 calls' worth (62 s).
        // Each job answers after 29 s (simulated): after two, a third could end at 89 s.
        var settings = new Dictionary<string, string?>(DeleteEventsOn)
        {
            ["Relay:MaxInCallRetries"] = "0",
            ["Relay:InCallRetryBudget"] = "00:00:00",
            ["Relay:AttemptTimeout"] = "00:00:30",
        };
        using var klaviyo = FakeKlaviyo.Start().Answer(JobsPath, 202);
        using var host = RelayTestHost.Create(klaviyo.BaseUrl, settings, services =>
            services.AddHttpClient<KlaviyoClient>().AddHttpMessageHandler(sp => new SlowHandler((SimulatedTime)sp.GetRequiredService<TimeProvider>())));
        var json = """{"type":"delete","messageId":"s-1","traits":{"email":"slow@example.com","phone":"+15005550006"},"context":{"externalId":[{"type":"klaviyo-profileId","id":"P9"}]}}""";

        var outcome = await Process(host, json, "s-1");

        var putOff = Assert.IsInstanceOfType<RelayOutcome.RetryLater>(outcome);
        Assert.AreEqual(1, putOff.NextAttempt, "no attempt spent: Klaviyo refused nothing");
        Assert.Contains("message lock", putOff.Cause);
        Assert.HasCount(2, klaviyo.Received);
    }

    private sealed class SlowHandler(SimulatedTime time) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            time.Advance(TimeSpan.FromSeconds(29));
            return response;
        }
    }

    private sealed class StampingHandler(TimeProvider time, List<DateTimeOffset> sent) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.AbsolutePath == JobsPath)
            {
                lock (sent)
                {
                    sent.Add(time.GetUtcNow());
                }
            }
            return base.SendAsync(request, cancellationToken);
        }
    }
}
